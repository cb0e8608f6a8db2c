//! The handler threads of the worker SDK: a request for a threaded handler runs on an idle
//! thread when there is one and on a new thread otherwise.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A job for a handler thread.
type Job = Box<dyn FnOnce() + Send>;
/// The receiving end the idle handler threads take turns on.
type SharedJobs = Arc<Mutex<mpsc::Receiver<Job>>>;

/// Handler threads, reused: a request runs on an idle thread when there is one and on a new
/// thread otherwise (a handler may block, so the pool grows with the concurrency the engine
/// allows rather than queueing behind a slow handler). Threads stay for the worker's life.
#[derive(Default)]
pub(super) struct HandlerPool {
    idle: Arc<AtomicUsize>,
    jobs: Option<(mpsc::Sender<Job>, SharedJobs)>,
}

impl HandlerPool {
    pub(super) fn run(&mut self, job: Job) {
        let (tx, rx) = self.jobs.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            (tx, Arc::new(Mutex::new(rx)))
        });
        // Claim an idle thread before handing it the job; only this thread submits.
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if claimed {
            if let Err(mpsc::SendError(job)) = tx.send(job) {
                std::thread::spawn(job);
            }
            return;
        }
        let (idle, rx) = (self.idle.clone(), rx.clone());
        std::thread::spawn(move || {
            job();
            loop {
                idle.fetch_add(1, Ordering::AcqRel);
                let next = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                match next {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
        });
    }
}
