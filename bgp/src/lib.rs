//! ferrolb embedded BGP speaker (export-only).
