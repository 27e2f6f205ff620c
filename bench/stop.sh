# Sourced by the benchmark scripts: stop_pids PID... stops processes the script started, by
# PID (never by name): CONT (a frozen one must be able to exit), TERM, up to 3 s for them to
# exit, then KILL. FRR leaves /var/tmp/frr/<daemon>.<pid> behind when killed; those go too.
stop_pids() {
    local p alive
    for p in "$@"; do kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 30); do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "$@"; do
        kill -KILL "$p" 2>/dev/null || true
        rm -rf "/var/tmp/frr/zebra.$p" "/var/tmp/frr/bfdd.$p" "/var/tmp/frr/bgpd.$p"
    done
}
