//! ferrolb ARP/NDP responder.
