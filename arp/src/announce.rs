//! When to send announcements (gratuitous ARP / unsolicited NA): a pure schedule driven by
//! the caller's clock. On gaining an IP: one at once, then `count - 1` more `interval` apart;
//! losing the IP cancels what is left.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct AnnounceSchedule {
    count: u32,
    interval: Duration,
    /// (next send time, ip, announcements left)
    pending: Vec<(Instant, IpAddr, u32)>,
}

impl AnnounceSchedule {
    pub fn new(count: u32, interval: Duration) -> AnnounceSchedule {
        AnnounceSchedule {
            count,
            interval,
            pending: Vec::new(),
        }
    }

    /// (Re)starts the announcements of `ip`: the first is due at `now`.
    pub fn start(&mut self, ip: IpAddr, now: Instant) {
        self.pending.retain(|(_, p, _)| *p != ip);
        if self.count > 0 {
            self.pending.push((now, ip, self.count));
        }
    }

    /// Cancels the announcements of every IP not in `owned`.
    pub fn retain_owned(&mut self, owned: &BTreeSet<IpAddr>) {
        self.pending.retain(|(_, ip, _)| owned.contains(ip));
    }

    /// When the next announcement is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.0).min()
    }

    /// The IPs to announce now; each is rescheduled `interval` later or finished.
    pub fn take_due(&mut self, now: Instant) -> Vec<IpAddr> {
        let mut due = Vec::new();
        for (at, ip, left) in &mut self.pending {
            if *at <= now {
                due.push(*ip);
                *left -= 1;
                *at = now + self.interval;
            }
        }
        self.pending.retain(|(_, _, left)| *left > 0);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn gained_ip_is_announced_count_times_interval_apart() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = AnnounceSchedule::new(4, ms(300));
        s.start(ip("192.0.2.1"), t0);
        assert_eq!(s.next_due(), Some(t0));
        let mut sent = Vec::new();
        let mut now = t0;
        for _ in 0..10 {
            let Some(at) = s.next_due() else { break };
            now = at.max(now);
            for _ in s.take_due(now) {
                sent.push(now - t0);
            }
        }
        assert_eq!(sent, vec![ms(0), ms(300), ms(600), ms(900)]);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn nothing_is_due_early_and_losing_cancels() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = AnnounceSchedule::new(3, ms(200));
        s.start(ip("192.0.2.1"), t0);
        s.start(ip("2001:db8::1"), t0);
        assert_eq!(s.take_due(t0).len(), 2);
        assert!(s.take_due(t0 + ms(199)).is_empty());
        s.retain_owned(&[ip("2001:db8::1")].into());
        assert_eq!(s.take_due(t0 + ms(200)), vec![ip("2001:db8::1")]);
        // Restarting (link came back up) begins a fresh series at once.
        s.start(ip("2001:db8::1"), t0 + ms(250));
        assert_eq!(s.take_due(t0 + ms(250)), vec![ip("2001:db8::1")]);
        assert_eq!(s.next_due(), Some(t0 + ms(450)));
    }

    #[test]
    fn count_zero_never_announces() {
        let mut s = AnnounceSchedule::new(0, Duration::from_millis(100));
        s.start(ip("192.0.2.1"), Instant::now());
        assert_eq!(s.next_due(), None);
    }
}
