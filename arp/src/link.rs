//! The interface list: [`LinkInfo`] and [`poll_links`], the safe face of `sys::interfaces`.
//! A leaf used by the driver (link polling) and by [`crate::socket`] (name -> ifindex).

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::packet::MacAddr;
use crate::{Error, sys};

/// One interface as last polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub up: bool,
    pub mac: Option<MacAddr>,
    pub addresses: Vec<IpNet>,
}

/// Every interface of the current network namespace, by name (one `getifaddrs` call).
pub(crate) fn poll_links() -> Result<BTreeMap<String, LinkInfo>, Error> {
    let raw = sys::interfaces().map_err(Error::ListInterfaces)?;
    Ok(raw
        .into_iter()
        .map(|r| {
            let info = LinkInfo {
                ifindex: r.ifindex,
                up: r.is_up(),
                mac: r.mac.map(MacAddr),
                addresses: r
                    .addrs
                    .iter()
                    .filter_map(|(ip, p)| IpNet::new(*ip, *p).ok())
                    .collect(),
            };
            (r.name, info)
        })
        .collect())
}
