//! Work that waits on round trips, spread over a few scoped threads: blob
//! and manifest transfers in [`crate::image::publish`], whole images in
//! `hoist build`. Rayon's pool is sized for the cores, and a worker blocked
//! on the network would leave one idle, so I/O-bound fan-out runs here.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// `work` on each of `items`, on up to `workers` threads at once; the
/// results in the order of `items`, or the first error in that order. Once
/// one item fails no new one starts, so a push stops soon after its first
/// error.
pub fn for_each_at_once<T: Sync, R: Send, E: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    if items.len() <= 1 || workers <= 1 {
        return items.iter().map(&work).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R, E>>>> =
        Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(items.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = work(item);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(result);
                }
            });
        }
    });
    let mut outcomes = Vec::with_capacity(items.len());
    let mut first_error = None;
    for result in results.into_inner().unwrap_or_else(PoisonError::into_inner) {
        match result {
            Some(Ok(outcome)) => outcomes.push(outcome),
            Some(Err(error)) => {
                first_error.get_or_insert(error);
            }
            // Not started: another item failed first.
            None => {}
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(outcomes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn items_run_side_by_side_and_results_keep_their_order() {
        // The first item waits for the second: that finishes only when both
        // run at once.
        let (signal, wait) = mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        let signal = Mutex::new(signal);
        let results = for_each_at_once(&[0usize, 1, 2, 3], 2, |item| match item {
            0 => {
                let wait = wait.lock().unwrap();
                wait.recv_timeout(Duration::from_secs(10))
                    .map(|()| 0)
                    .map_err(|_| "the second item never ran")
            }
            1 => {
                signal.lock().unwrap().send(()).unwrap();
                Ok(10)
            }
            other => Ok(other * 10),
        })
        .unwrap();
        assert_eq!(results, vec![0, 10, 20, 30]);
    }

    #[test]
    fn the_first_failure_is_returned_and_stops_new_work() {
        let started = AtomicUsize::new(0);
        let items: Vec<usize> = (0..10).collect();
        let error = for_each_at_once(&items, 1, |&item| {
            started.fetch_add(1, Ordering::Relaxed);
            if item == 3 { Err(item) } else { Ok(item) }
        })
        .unwrap_err();
        assert_eq!(error, 3);
        assert_eq!(
            started.load(Ordering::Relaxed),
            4,
            "nothing after the failure"
        );

        let error = for_each_at_once(
            &items,
            4,
            |&item| {
                if item % 5 == 4 { Err(item) } else { Ok(item) }
            },
        )
        .unwrap_err();
        assert!([4, 9].contains(&error), "{error}");
    }
}
