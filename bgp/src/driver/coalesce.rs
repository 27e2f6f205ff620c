//! When changed routes go out (pure). UPDATEs for changes that arrive together are packed
//! (one sync per `coalesce` window at most), but a change after a quiet window goes out at
//! once: there is nothing to pack it with, and a fixed wait would only add latency to every
//! lone Service change (it was 20 ms on every add and delete).

use std::time::Duration;

use tokio::time::Instant;

/// When to sync the Adj-RIB-Out after routes changed at `now`, given when UPDATEs last went
/// out: at once when that was at least `coalesce` ago (or never), else at the end of its
/// window.
pub(crate) fn sync_at(now: Instant, last_sync: Option<Instant>, coalesce: Duration) -> Instant {
    match last_sync {
        Some(t) if now < t + coalesce => t + coalesce,
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_millis(20);

    #[test]
    fn a_change_after_a_quiet_window_goes_out_at_once() {
        let t0 = Instant::now();
        assert_eq!(sync_at(t0, None, W), t0);
        assert_eq!(sync_at(t0 + W, Some(t0), W), t0 + W);
        assert_eq!(
            sync_at(t0 + Duration::from_secs(5), Some(t0), W),
            t0 + Duration::from_secs(5)
        );
    }

    #[test]
    fn changes_within_the_window_wait_for_its_end_so_a_burst_is_one_sync() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(sync_at(t0 + ms(1), Some(t0), W), t0 + W);
        assert_eq!(sync_at(t0 + ms(19), Some(t0), W), t0 + W);
    }
}
