//! ferrolb API types (group `ferrolb.io`, version `v1alpha1`) and validated config.
