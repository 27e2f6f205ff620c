//! ferrolb controller: IP allocator (pure) and Service reconciler.
