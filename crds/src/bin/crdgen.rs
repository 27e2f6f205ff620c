//! Prints every ferrolb CRD on stdout, for `examples/manifests/crds.yaml`:
//! `cargo run -p ferrolb-crds --bin crdgen > examples/manifests/crds.yaml`. The install
//! manifest is rendered from `deploy/` by `deploy/render-install.sh`.

fn main() {
    print!("{}", ferrolb_crds::crds_yaml());
}
