//! Writes every ferrolb CRD as one multi-document YAML stream on stdout:
//! `cargo run -p ferrolb-crds --bin crdgen > examples/manifests/crds.yaml`.

fn main() {
    print!("{}", ferrolb_crds::crds_yaml());
}
