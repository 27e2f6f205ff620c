//! The watcher on real files: inotify-driven, each change applied exactly once.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TempDir, service, services};
use ferrolb_cluster::{ClusterView, Metrics, Options, Watcher};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(10);

fn start(dir: &TempDir) -> (Watcher, watch::Receiver<Arc<ClusterView>>) {
    let mut opts = Options::new(dir.path());
    // The safety rescan must not be what finds the changes here.
    opts.rescan = Duration::from_secs(3600);
    let w = Watcher::start(opts, Metrics::default()).unwrap();
    let rx = w.subscribe();
    (w, rx)
}

async fn wait_for(
    rx: &mut watch::Receiver<Arc<ClusterView>>,
    f: impl Fn(&ClusterView) -> bool,
) -> Arc<ClusterView> {
    tokio::time::timeout(WAIT, rx.wait_for(|v| f(v)))
        .await
        .expect("view within 10 s")
        .unwrap()
        .clone()
}

/// No new view for `quiet` (the last one stays).
async fn settle(rx: &mut watch::Receiver<Arc<ClusterView>>) -> Arc<ClusterView> {
    while tokio::time::timeout(Duration::from_millis(300), rx.changed())
        .await
        .is_ok()
    {}
    rx.borrow_and_update().clone()
}

#[tokio::test]
async fn a_file_replaced_by_rename_applies_exactly_once() {
    let dir = TempDir::new("rename");
    dir.write("a.yaml", &service("a"));
    let (_w, mut rx) = start(&dir);
    let g0 = rx.borrow_and_update().generation;
    let t0 = Instant::now();
    dir.replace("a.yaml", &[service("a"), service("b")].join("---\n"));
    let v = wait_for(&mut rx, |v| v.generation > g0).await;
    let took = t0.elapsed();
    assert_eq!(services(&v), ["a", "b"]);
    assert_eq!(settle(&mut rx).await.generation, g0 + 1, "one new view");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_file_edited_in_place_applies_exactly_once() {
    use std::io::Write as _;
    let dir = TempDir::new("inplace");
    dir.write("a.yaml", &service("a"));
    let (_w, mut rx) = start(&dir);
    let g0 = rx.borrow_and_update().generation;
    // Truncate, then write in two pieces with a pause (as a slow editor would): the empty and
    // the half file must never apply.
    let text = [service("a"), service("b")].join("---\n");
    let (one, two) = text.split_at(text.len() / 2);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.path().join("a.yaml"))
        .unwrap();
    f.write_all(one.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    f.write_all(two.as_bytes()).unwrap();
    drop(f);
    let v = wait_for(&mut rx, |v| v.generation > g0).await;
    assert_eq!(services(&v), ["a", "b"]);
    assert!(v.file_errors.is_empty(), "{:?}", v.file_errors);
    assert_eq!(settle(&mut rx).await.generation, g0 + 1, "one new view");
}

#[tokio::test]
async fn new_and_deleted_files_are_seen_without_polling() {
    let dir = TempDir::new("newdel");
    let (_w, mut rx) = start(&dir);
    dir.replace("b.yaml", &service("b"));
    wait_for(&mut rx, |v| services(v) == ["b"]).await;
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    wait_for(&mut rx, |v| v.resources.services.is_empty()).await;
}

#[tokio::test]
async fn a_directory_removed_and_recreated_is_picked_up() {
    let dir = TempDir::new("recreate");
    dir.write("a.yaml", &service("a"));
    let (_w, mut rx) = start(&dir);
    std::fs::remove_dir_all(dir.path()).unwrap();
    let v = wait_for(&mut rx, |v| !v.file_errors.is_empty()).await;
    assert_eq!(
        services(&v),
        ["a"],
        "a missing directory keeps the last good state"
    );
    assert!(v.file_errors[0].kept_previous);
    std::fs::create_dir_all(dir.path()).unwrap();
    dir.write("b.yaml", &service("b"));
    let v = wait_for(&mut rx, |v| services(v) == ["b"]).await;
    assert!(v.file_errors.is_empty(), "{:?}", v.file_errors);
    // And the new directory is watched.
    dir.replace("c.yaml", &service("c"));
    wait_for(&mut rx, |v| services(v) == ["b", "c"]).await;
}
