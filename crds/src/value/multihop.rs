//! The `ebgpMultiHop` rule's CEL text and message (the rule itself: `PeerAsn::is_ibgp` in
//! `crate::config`; both say the same, a shared table of cases tests it).

/// `ebgpMultiHop` on an iBGP peer: the message in config errors and from the API server.
pub const EBGP_MULTIHOP_MESSAGE: &str = "ebgpMultiHop applies only to eBGP peers: not with \
     dynamicASN internal, nor with a peerASN equal to localASN (myASN when localASN is unset)";

/// The object-level CEL rule on `BGPPeer.spec` for `ebgpMultiHop`: the test of
/// `crate::config::PeerAsn::is_ibgp` (issue #17: `dynamicASN: internal` included).
pub fn ebgp_multihop_cel_validation() -> serde_json::Value {
    serde_json::json!({
        "rule": "!has(self.ebgpMultiHop) || !self.ebgpMultiHop || \
                 (has(self.dynamicASN) ? self.dynamicASN != 'internal' : \
                 !has(self.peerASN) || self.peerASN != (has(self.localASN) ? self.localASN : self.myASN))",
        "message": EBGP_MULTIHOP_MESSAGE,
        "fieldPath": ".ebgpMultiHop"
    })
}
