//! A TCP relay that makes the host's kube-apiserver reachable at the same `127.0.0.1:PORT`
//! inside a network namespace (whose loopback is its own).
//!
//! A socket keeps the network namespace it was created in: the listener is bound by a short
//! thread that entered the namespace, while the connections to the apiserver are made from a
//! thread in the test process's own namespace. So no helper process and no Unix socket are
//! needed, the kubeconfig (and its serving certificate for 127.0.0.1) work unchanged, and an
//! apiserver restart on the same port is picked up by the next connection.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) struct Relay {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

fn enter_netns(path: &str) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    crate::sys::setns_net(&file)
}

impl Relay {
    /// Listens on 127.0.0.1:`port` inside the namespace `/run/netns/{netns}` and forwards each
    /// connection to 127.0.0.1:`port` of the test process's namespace.
    pub(crate) fn start(netns: &str, port: u16) -> std::io::Result<Relay> {
        let ns_path = format!("/run/netns/{netns}");
        let listener = std::thread::spawn(move || -> std::io::Result<TcpListener> {
            enter_netns(&ns_path)?;
            TcpListener::bind(("127.0.0.1", port))
        })
        .join()
        .map_err(|_| std::io::Error::other("relay bind thread panicked"))??;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (stop2, conns2) = (stop.clone(), conns.clone());
        let accept = std::thread::Builder::new()
            .name(format!("kube-relay-{port}"))
            .spawn(move || {
                // The process's own namespace (the main thread's), whatever thread called us.
                if let Err(e) = enter_netns("/proc/self/ns/net") {
                    eprintln!("kube-env relay: cannot enter the host namespace: {e}");
                    return;
                }
                while !stop2.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((inner, _)) => {
                            let _ = inner.set_nonblocking(false);
                            match TcpStream::connect(("127.0.0.1", port)) {
                                Ok(outer) => pipe(inner, outer, &conns2),
                                Err(_) => drop(inner), // apiserver down: the client retries
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => {
                            eprintln!("kube-env relay: accept failed: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        Ok(Relay {
            stop,
            conns,
            accept: Some(accept),
        })
    }
}

/// Copies both ways on two threads; keeps clones so teardown can shut the sockets.
fn pipe(a: TcpStream, b: TcpStream, conns: &Mutex<Vec<TcpStream>>) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    {
        let mut list = conns.lock().expect("relay conns lock");
        // Forget sockets whose both directions are done (peer_addr fails once shut down).
        list.retain(|s| s.peer_addr().is_ok());
        if let (Ok(x), Ok(y)) = (a.try_clone(), b.try_clone()) {
            list.push(x);
            list.push(y);
        }
    }
    let one_way = |mut from: TcpStream, mut to: TcpStream| {
        move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
            let _ = from.shutdown(Shutdown::Read);
        }
    };
    std::thread::spawn(one_way(a, b2));
    std::thread::spawn(one_way(b, a2));
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for s in self.conns.lock().expect("relay conns lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}
