//! Shared helpers: a temporary directory and manifests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d =
            std::env::temp_dir().join(format!("ferrolb-cluster-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).unwrap();
    }

    /// Writes through a temporary name outside the pattern and a rename.
    pub fn replace(&self, name: &str, text: &str) {
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.0.join(name)).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
    )
}

pub const POOL: &str = "apiVersion: ferrolb.io/v1alpha1\nkind: IPAddressPool\nmetadata: {name: p, namespace: ferrolb-system}\nspec: {addresses: [192.0.2.200-192.0.2.210]}\n";

/// Names of the Services in force, sorted.
pub fn services(view: &ferrolb_cluster::ClusterView) -> Vec<String> {
    let mut v: Vec<String> = view
        .resources
        .services
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    v.sort();
    v
}
