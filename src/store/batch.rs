//! Visits that arrive while counts are being saved share the next command.
//!
//! Up to [`IN_FLIGHT`] commands are out at a time. A visitor joins the queue; if fewer
//! are out, a sender task starts at once with everyone queued (a lone visitor waits for
//! nothing). Whoever arrives while every sender's command is out forms the next batch,
//! sent by the first sender whose answer is in: `k` visitors cost one `INCRBY k`, and
//! the total `v` it returns gives them the counts `v-k+1 ..= v` in the order they joined.
//! A command's deadline runs from when its batch's first visitor arrived, so no visitor
//! waits longer than the deadline, however long the batch waited to be sent.
//! The store applies commands in the order they are sent, so a batch sent later is
//! told higher counts. On the service's one thread a sender sends its batch as soon
//! as it takes it, unless the connection is being opened: then two batches waiting
//! on it may go out in either order, each still gap-free and in its own order.

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use tokio::{sync::oneshot, time::Instant};

use super::{Store, StoreError};

type Waiter = oneshot::Sender<Result<i64, StoreError>>;

/// Commands out at once. With one, the visitors who arrive while it is out wait a
/// whole round trip before theirs is sent, and the service idles meanwhile; a second
/// sends them at once. Measured with scripts/bench.sh: two served 24% more visits than
/// one at c=16 and 6% more at c=64, four 2% fewer than two (README, "Performance").
const IN_FLIGHT: usize = 2;

/// Counts visits through any [`Store`], one command for all who arrive together.
#[derive(Clone)]
pub struct BatchedCounter {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn Store>,
    /// The longest a visitor waits for its count: its batch is apologised to when the
    /// deadline has passed since the batch's first visitor arrived.
    deadline: Duration,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Visitors whose count has not been sent yet, in the order they arrived.
    waiting: Vec<Waiter>,
    /// When the first of them arrived; read once per batch rather than per visitor.
    since: Option<Instant>,
    /// Sender tasks running, at most [`IN_FLIGHT`]; each takes whoever waits when its
    /// command is done.
    senders: usize,
}

impl BatchedCounter {
    /// Batches counts in front of `store`, bounding each command by `deadline`.
    pub fn new(store: Arc<dyn Store>, deadline: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                deadline,
                queue: Mutex::new(Queue::default()),
            }),
        }
    }

    /// Counts one visit and returns its own count.
    ///
    /// The visit joins the queue when this is called, not when the future is first
    /// polled. Dropping the future does not withdraw a count already sent: it is
    /// applied anyway, the visitor simply does not hear it. A visitor who leaves
    /// before the count is sent is not counted. Call it within a Tokio runtime, as
    /// every request handler is: the commands are sent from a task of their own.
    pub fn count_visit(&self) -> impl Future<Output = Result<i64, StoreError>> + Send + 'static {
        let (waiter, answer) = oneshot::channel();
        let start = {
            let mut queue = lock(&self.shared.queue);
            if queue.waiting.is_empty() {
                queue.since = Some(Instant::now());
            }
            queue.waiting.push(waiter);
            let start = queue.senders < IN_FLIGHT;
            queue.senders += usize::from(start);
            start
        };
        if start {
            // Its own task: a visitor who hangs up must not take the others' command with it.
            tokio::spawn(send_batches(Arc::clone(&self.shared)));
        }
        async move { answer.await.unwrap_or(Err(StoreError::Abandoned)) }
    }
}

/// Sends one command per batch until nobody waits.
async fn send_batches(shared: Arc<Shared>) {
    let mut sender = Sender {
        shared: &shared,
        batch: Vec::new(),
        running: true,
    };
    loop {
        let since = {
            let mut queue = lock(&shared.queue);
            // Visitors who left before their count was sent are not counted.
            queue.waiting.retain(|waiter| !waiter.is_closed());
            if queue.waiting.is_empty() {
                queue.senders -= 1;
                sender.running = false;
                return;
            }
            std::mem::swap(&mut queue.waiting, &mut sender.batch);
            // Should the first visitor have left, the batch is given up a little early.
            queue.since.take().unwrap_or_else(Instant::now)
        };
        let views = sender.batch.len() as u64;
        let outcome =
            tokio::time::timeout_at(since + shared.deadline, shared.store.add_views(views))
                .await
                .unwrap_or(Err(StoreError::TimedOut(shared.deadline)));
        match outcome {
            Ok(total) => {
                let first = total.wrapping_sub(views as i64 - 1);
                for (offset, waiter) in sender.batch.drain(..).enumerate() {
                    let _ = waiter.send(Ok(first.wrapping_add(offset as i64)));
                }
            }
            Err(err) => {
                // One failure, told to everyone the command counted. A timed-out
                // count may still have been applied, so it is never sent again.
                let err = Arc::new(err);
                for waiter in sender.batch.drain(..) {
                    let _ = waiter.send(Err(StoreError::Shared(Arc::clone(&err))));
                }
            }
        }
    }
}

/// A running sender task. Should it end before the queue is empty (a panicking store,
/// a runtime shutting down), its batch is told the count was abandoned and the next
/// visitor starts a new sender; if it was the last sender, everyone waiting is told too.
struct Sender<'a> {
    shared: &'a Shared,
    /// The visitors whose command is in flight.
    batch: Vec<Waiter>,
    running: bool,
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        if self.running {
            let mut queue = lock(&self.shared.queue);
            queue.senders -= 1;
            if queue.senders == 0 {
                queue.waiting.clear();
            }
        }
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // The queue is consistent between statements, so it stays usable after a panic.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        io,
        sync::atomic::{AtomicI64, Ordering},
    };

    use futures::future::{BoxFuture, FutureExt};
    use proptest::prelude::*;
    use tokio::task::JoinHandle;

    use super::*;

    /// What a visitor heard: a count, or the apology's cause.
    type Answer = Result<i64, String>;

    /// How a held command ends.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Outcome {
        Counted,
        Refused,
        /// The store gave up waiting; the count was applied or not, nobody knows.
        TimedOut {
            applied: bool,
        },
        /// The store fails in a way nobody planned for: its sender task dies.
        Panics,
    }

    #[derive(Debug, Clone, Copy)]
    enum Event {
        Arrive,
        /// The visitor at this place (modulo those who came) hangs up.
        Leave(usize),
        /// The command in flight ends.
        Answer(Outcome),
    }

    struct Held {
        end: oneshot::Sender<Outcome>,
    }

    /// A store whose commands wait until the test ends them, one by one.
    #[derive(Default)]
    struct HeldStore {
        total: AtomicI64,
        held: Mutex<VecDeque<Held>>,
        /// Views per command sent, and how each ended.
        log: Mutex<Vec<(u64, Option<Outcome>)>>,
    }

    impl Store for HeldStore {
        fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
            let (end, ended) = oneshot::channel();
            self.held.lock().unwrap().push_back(Held { end });
            let command = {
                let mut log = self.log.lock().unwrap();
                log.push((views, None));
                log.len() - 1
            };
            async move {
                let outcome = ended.await.expect("the test ends every command");
                self.log.lock().unwrap()[command].1 = Some(outcome);
                let add = || self.total.fetch_add(views as i64, Ordering::SeqCst) + views as i64;
                match outcome {
                    Outcome::Counted => Ok(add()),
                    Outcome::Refused => Err(StoreError::Rejected(Box::new(io::Error::other("no")))),
                    Outcome::TimedOut { applied } => {
                        if applied {
                            add();
                        }
                        Err(StoreError::TimedOut(Duration::from_millis(1)))
                    }
                    Outcome::Panics => panic!("a store failing in a way nobody planned for"),
                }
            }
            .boxed()
        }

        fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            async { Ok(()) }.boxed()
        }
    }

    /// Lets every task run until all wait on something only the test can do.
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    fn events() -> impl Strategy<Value = Vec<Event>> {
        let outcome = prop_oneof![
            6 => Just(Outcome::Counted),
            1 => Just(Outcome::Refused),
            1 => any::<bool>().prop_map(|applied| Outcome::TimedOut { applied }),
        ];
        let event = prop_oneof![
            6 => Just(Event::Arrive),
            1 => any::<usize>().prop_map(Event::Leave),
            4 => outcome.prop_map(Event::Answer),
        ];
        proptest::collection::vec(event, 1..80)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Whatever the arrivals, departures and failures: at most IN_FLIGHT commands out,
        /// nobody left unsent while fewer are, each visitor in at most one command,
        /// distinct counts rising in arrival order,
        /// and the total grows by the counts told plus only what nobody could be told.
        #[test]
        fn batches_count_everyone_once(events in events(), start in 0..1000i64) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(check(events, start));
        }
    }

    async fn check(events: Vec<Event>, start: i64) {
        let store = Arc::new(HeldStore::default());
        store.total.store(start, Ordering::SeqCst);
        let counter = BatchedCounter::new(store.clone(), Duration::from_secs(3600));
        let answers: Arc<Mutex<Vec<Option<Answer>>>> = Arc::default();
        let mut visitors: Vec<JoinHandle<()>> = Vec::new();
        let mut left = Vec::new();

        let end_next = |outcome| {
            if let Some(held) = store.held.lock().unwrap().pop_front() {
                let _ = held.end.send(outcome);
            }
        };
        for event in events
            .into_iter()
            .chain(std::iter::repeat_n(Event::Answer(Outcome::Counted), 100))
        {
            match event {
                Event::Arrive => {
                    let place = visitors.len();
                    answers.lock().unwrap().push(None);
                    let visit = counter.count_visit();
                    let answers = Arc::clone(&answers);
                    visitors.push(tokio::spawn(async move {
                        let answer = visit.await.map_err(|err| err.to_string());
                        answers.lock().unwrap()[place] = Some(answer);
                    }));
                }
                Event::Leave(place) if !visitors.is_empty() => {
                    let place = place % visitors.len();
                    if answers.lock().unwrap()[place].is_none() {
                        visitors[place].abort();
                        left.push(place);
                    }
                }
                Event::Leave(_) => {}
                Event::Answer(outcome) => end_next(outcome),
            }
            settle().await;
            // At most IN_FLIGHT commands out, and a visitor waits unsent only while
            // that many are: more visitors wait than the commands out carry.
            let held = store.held.lock().unwrap().len();
            assert!(held <= IN_FLIGHT, "{held} commands in flight");
            let carried: u64 = store
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, outcome)| outcome.is_none())
                .map(|(views, _)| views)
                .sum();
            let waiting = answers
                .lock()
                .unwrap()
                .iter()
                .enumerate()
                .filter(|(place, answer)| answer.is_none() && !left.contains(place))
                .count();
            assert!(
                waiting as u64 <= carried || held == IN_FLIGHT,
                "{waiting} visitors wait, {carried} of them in {held} commands out"
            );
        }

        let answers = answers.lock().unwrap().clone();
        let log = store.log.lock().unwrap().clone();
        let total = store.total.load(Ordering::SeqCst);
        let told: Vec<i64> = answers.iter().filter_map(|a| a.clone()?.ok()).collect();
        let apologised = answers.iter().filter(|a| matches!(a, Some(Err(_)))).count();
        let arrived = answers.len();

        // Everyone who stayed heard; the counts told are distinct and rise in arrival order.
        for (place, answer) in answers.iter().enumerate() {
            assert!(
                answer.is_some() || left.contains(&place),
                "visitor {place} never heard"
            );
        }
        assert!(
            told.windows(2).all(|pair| pair[0] < pair[1]),
            "counts out of order: {told:?}"
        );

        let sent = |filter: &dyn Fn(Outcome) -> bool| -> u64 {
            log.iter()
                .filter(|(_, o)| o.is_some_and(filter))
                .map(|(views, _)| views)
                .sum()
        };
        let counted = sent(&|o| o == Outcome::Counted);
        let refused = sent(&|o| o == Outcome::Refused);
        let unknown_applied = sent(&|o| o == Outcome::TimedOut { applied: true });
        let unknown = sent(&|o| matches!(o, Outcome::TimedOut { .. }));
        let all: u64 = log.iter().map(|(views, _)| views).sum();
        let left = left.len() as u64;

        // No visitor is sent twice, every one who stayed is sent.
        assert!(
            all <= arrived as u64 && all + left >= arrived as u64,
            "{all} views sent for {arrived} visitors, {left} left"
        );
        // A command's outcome is told to exactly its visitors (but those who left).
        assert!(told.len() as u64 <= counted && told.len() as u64 + left >= counted);
        assert!(
            apologised as u64 <= refused + unknown && apologised as u64 + left >= refused + unknown
        );
        // The total grows by the counts told, plus those nobody could be told.
        let growth = (total - start) as u64;
        assert_eq!(growth, counted + unknown_applied);
        assert!(
            growth >= told.len() as u64 && growth <= told.len() as u64 + unknown_applied + left
        );
        // Without departures or unknown outcomes, the counts told are exactly start+1 ..= total.
        if left == 0 && unknown_applied == 0 {
            assert_eq!(told, (start + 1..=total).collect::<Vec<_>>());
        }
    }

    /// A store that panics: its batch is told the count was abandoned, and the next
    /// visitor is counted by a new sender rather than left waiting for the dead one.
    #[tokio::test(start_paused = true)]
    async fn a_sender_that_dies_leaves_the_counter_usable() {
        struct PanicsOnce(AtomicI64);
        impl Store for PanicsOnce {
            fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
                let calls = self.0.fetch_add(1, Ordering::SeqCst);
                async move {
                    assert!(calls > 0, "a store failing in a way nobody planned for");
                    Ok(views as i64)
                }
                .boxed()
            }
            fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
                async { Ok(()) }.boxed()
            }
        }
        let counter = BatchedCounter::new(
            Arc::new(PanicsOnce(AtomicI64::new(0))),
            Duration::from_secs(5),
        );
        assert!(matches!(
            counter.count_visit().await,
            Err(StoreError::Abandoned)
        ));
        let next = tokio::time::timeout(Duration::from_secs(60), counter.count_visit())
            .await
            .expect("the next visitor waited for the sender that died");
        assert_eq!(next.unwrap(), 1);
    }

    /// A sender that dies leaves whoever waits to the other sender; when the last one
    /// dies, whoever waits is told the count was abandoned rather than waiting for ever.
    #[tokio::test(start_paused = true)]
    async fn visitors_waiting_when_a_sender_dies_go_with_the_other_or_are_told() {
        let store = Arc::new(HeldStore::default());
        let counter = BatchedCounter::new(store.clone(), Duration::from_secs(3600));
        let held = &store.held;
        let end_next = |outcome| async move {
            let held = held.lock().unwrap().pop_front();
            let _ = held.expect("a command is out").end.send(outcome);
            settle().await;
        };
        let heard = |visit| async {
            let visit = tokio::time::timeout(Duration::from_secs(60), visit);
            visit.await.expect("a visitor was left waiting")
        };
        // Two visitors, each sent at once, and a third waiting behind them.
        let two_out_one_waiting = || async {
            let first = counter.count_visit();
            settle().await;
            let second = counter.count_visit();
            settle().await;
            (first, second, counter.count_visit())
        };

        // The first sender dies.
        let (first, second, third) = two_out_one_waiting().await;
        end_next(Outcome::Panics).await;
        assert!(matches!(heard(first).await, Err(StoreError::Abandoned)));
        end_next(Outcome::Counted).await;
        assert_eq!(heard(second).await.unwrap(), 1);
        end_next(Outcome::Counted).await;
        assert_eq!(heard(third).await.unwrap(), 2);

        // Both senders die.
        let (fourth, fifth, sixth) = two_out_one_waiting().await;
        end_next(Outcome::Panics).await;
        end_next(Outcome::Panics).await;
        for visit in [fourth, fifth, sixth] {
            assert!(matches!(heard(visit).await, Err(StoreError::Abandoned)));
        }
        // And the counter still counts.
        let seventh = counter.count_visit();
        settle().await;
        end_next(Outcome::Counted).await;
        assert_eq!(heard(seventh).await.unwrap(), 3);
    }

    /// A store that never answers: the batch is apologised to after the deadline, and
    /// the next visitor is sent at once in a batch of its own.
    #[tokio::test(start_paused = true)]
    async fn a_command_that_never_ends_is_given_up_after_the_deadline() {
        struct Silent(AtomicI64);
        impl Store for Silent {
            fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
                if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                    std::future::pending().boxed()
                } else {
                    async move { Ok(views as i64) }.boxed()
                }
            }
            fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
                async { Ok(()) }.boxed()
            }
        }
        let counter = BatchedCounter::new(
            Arc::new(Silent(AtomicI64::new(0))),
            Duration::from_millis(500),
        );
        let first = counter.count_visit();
        let (first, second) = tokio::join!(first, async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            counter.count_visit().await
        });
        assert!(
            matches!(first, Err(StoreError::Shared(ref err)) if matches!(**err, StoreError::TimedOut(_)))
        );
        assert_eq!(second.unwrap(), 1);
    }

    /// A visitor queued behind stalled commands is told when the deadline has passed
    /// since it arrived, not a whole deadline after its batch is finally sent.
    #[tokio::test(start_paused = true)]
    async fn a_visitor_queued_behind_stalled_commands_waits_no_longer_than_the_deadline() {
        struct Stalled;
        impl Store for Stalled {
            fn add_views(&self, _: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
                std::future::pending().boxed()
            }
            fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
                async { Ok(()) }.boxed()
            }
        }
        let counter = BatchedCounter::new(Arc::new(Stalled), Duration::from_millis(500));
        let step = Duration::from_millis(100);
        let start = Instant::now();
        let first = counter.count_visit();
        tokio::time::sleep(step).await;
        let second = counter.count_visit();
        tokio::time::sleep(step).await;
        // Both commands are out: these two wait until the first gives up at 500 ms,
        // and are sent together.
        let third = counter.count_visit();
        tokio::time::sleep(step).await;
        let fourth = counter.count_visit();
        let told_when = |visit| async move { (visit.await, start.elapsed()) };
        let (first, second, (third, third_told), (fourth, fourth_told)) =
            tokio::join!(first, second, told_when(third), told_when(fourth));
        for told in [first, second, third, fourth] {
            assert!(
                matches!(told, Err(StoreError::Shared(ref err)) if matches!(**err, StoreError::TimedOut(_)))
            );
        }
        // The clock is paused, so this is exact: the first of the two arrived at 200 ms,
        // and the deadline is 500 ms.
        assert_eq!(third_told, Duration::from_millis(700));
        assert_eq!(fourth_told, Duration::from_millis(700));
    }
}
