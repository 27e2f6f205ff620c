//! The whole speaker (`ferrolb_speaker::run::run`) with a standalone manifests directory, on
//! its own tokio runtime inside a node namespace; stopped (clean shutdown) on drop. For
//! tests that drive the speaker by writing manifest files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::run::{Health, Options, run};
use ferrolb_speaker::source::ClusterSource;
use ferrolb_speaker::source::standalone::{Standalone, state_file};

use crate::lab::TempDir;
use crate::netns::Netns;

/// Node `n1` with Service `default/web` (one endpoint on n1, 192.0.2.10).
pub const WEB_SERVICE: &str = "
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [192.0.2.10], nodeName: n1}]
";

/// The controller's standalone status giving `default/web` the IP 203.0.113.5.
pub const WEB_STATUS: &str = "generation: 1\nservices:\n  - namespace: default\n    name: web\n    ingress:\n      - ip: 203.0.113.5\n    condition: {status: \"True\", reason: IPAllocated, message: ok}\n";

pub struct RunningSpeaker {
    dir: TempDir,
    pub metrics: Metrics,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ferrolb_speaker::Error>>>,
}

impl RunningSpeaker {
    /// Writes `files` (name, YAML) and [`WEB_STATUS`], then starts the speaker for node `n1`
    /// in `ns` (driver poll 100 ms; the directory is watched).
    pub fn start(ns: &Netns, files: &[(&str, &str)]) -> RunningSpeaker {
        Self::start_with_status(ns, WEB_STATUS, files)
    }

    /// [`RunningSpeaker::start`] with `status` as the controller's standalone status (the
    /// Services' assigned IPs) instead of [`WEB_STATUS`].
    pub fn start_with_status(ns: &Netns, status: &str, files: &[(&str, &str)]) -> RunningSpeaker {
        let dir = TempDir::new("speaker-run");
        std::fs::create_dir_all(dir.path().join(".ferrolb")).unwrap();
        std::fs::write(dir.path().join(".ferrolb/status.yaml"), status).unwrap();
        let mut sp = RunningSpeaker {
            dir,
            metrics: Metrics::default(),
            stop: None,
            thread: None,
        };
        for (name, yaml) in files {
            sp.write(name, yaml);
        }
        let metrics = sp.metrics.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let manifests = sp.dir.path().to_path_buf();
        let thread = ns.spawn_thread(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let source: Arc<dyn ClusterSource> =
                    Arc::new(Standalone::start(manifests, "n1", Default::default()).unwrap());
                let mut opts = Options::new("n1");
                opts.poll = Duration::from_millis(100);
                run(opts, source, metrics, Health::default(), async move {
                    let _ = stop_rx.await;
                })
                .await
            })
        });
        sp.stop = Some(stop_tx);
        sp.thread = Some(thread);
        sp
    }

    /// Writes (or atomically replaces) one manifest file.
    pub fn write(&self, name: &str, yaml: &str) {
        let tmp = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, self.dir.path().join(name)).unwrap();
    }

    /// Deletes one manifest file.
    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(name)).unwrap();
    }

    /// The node's `SpeakerState` file.
    pub fn state_path(&self) -> PathBuf {
        state_file(self.dir.path(), "n1")
    }

    /// Stops the speaker (clean shutdown) and returns what `run` returned.
    pub fn stop(mut self) -> Result<(), ferrolb_speaker::Error> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), ferrolb_speaker::Error> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().expect("speaker thread"),
            None => Ok(()),
        }
    }
}

impl Drop for RunningSpeaker {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
