//! Records instead of whole objects: the watch stream turns each Service and EndpointSlice
//! into a [`ServiceRecord`] / [`SliceRecord`] as it arrives, so the speaker never keeps a
//! whole `Service` (a few KiB as k8s-openapi structs) — with 10,000 Services that was most of
//! its memory — and every snapshot shares the store's `Arc`s instead of cloning.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::Event;

use crate::cluster::{ServiceRecord, SliceRecord};
use ferrolb_cluster::kube::{Keyed, map_event};

impl Keyed for ServiceRecord {
    fn key(&self) -> &str {
        &self.view.key
    }
}

impl Keyed for SliceRecord {
    fn key(&self) -> &str {
        &self.key
    }
}

/// The record of a Service event.
pub fn service_event(ev: Event<Service>) -> Option<Event<ServiceRecord>> {
    map_event(ev, ServiceRecord::from_service)
}

/// The record of an EndpointSlice event.
pub fn slice_event(ev: Event<EndpointSlice>) -> Option<Event<SliceRecord>> {
    map_event(ev, SliceRecord::from_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_cluster::kube::record_store;

    fn service(yaml: &str) -> Service {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn a_store_of_records_applies_and_deletes_by_key() {
        let (store, mut writer) = record_store::<ServiceRecord>();
        let svc = service(
            "metadata: {name: web, namespace: shop, uid: u1, resourceVersion: '7', labels: {app: web}}\n\
             spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}\n\
             status: {loadBalancer: {ingress: [{ip: 192.0.2.200}]}}\n",
        );
        writer.apply(service_event(Event::Apply(svc.clone())).unwrap());
        let got = store.get("shop/web").expect("stored under shop/web");
        assert!(got.ours);
        assert_eq!(
            got.uid.as_ref().map(ToString::to_string).as_deref(),
            Some("u1")
        );
        assert_eq!(
            got.resource_version
                .as_ref()
                .map(|v| v.to_string())
                .as_deref(),
            Some("7")
        );
        assert_eq!(got.view.key, "shop/web");
        assert_eq!(
            got.view.ips,
            ["192.0.2.200".parse::<std::net::IpAddr>().unwrap()]
        );
        assert!(got.view.local);
        assert_eq!(got.view.labels["app"], "web");

        writer.apply(service_event(Event::Delete(svc)).unwrap());
        assert!(store.state().is_empty(), "deleted by namespace and name");
    }

    #[test]
    fn other_services_keep_no_labels_or_ips() {
        let svc = service(
            "metadata: {name: db, namespace: shop, labels: {app: db}}\n\
             spec: {type: LoadBalancer, loadBalancerClass: example.com/lb}\n\
             status: {loadBalancer: {ingress: [{ip: 192.0.2.201}]}}\n",
        );
        let rec = ServiceRecord::from_service(&svc).unwrap();
        assert!(!rec.ours);
        assert!(rec.view.labels.is_empty() && rec.view.ips.is_empty());
        assert!(service_event(Event::Apply(Service::default())).is_none());
    }
}
