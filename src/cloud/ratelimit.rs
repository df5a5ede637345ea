//! Client-side rate limits per API class, with containment calls served before forensics.
//!
//! Each class admits one call every `1 / rate` seconds (plus a small guard). Spacing calls rather than allowing
//! bursts keeps any one-second window within the documented quota (ActionTrail
//! `LookupEvents`: 2 per second per account). One limiter belongs to one client, and one
//! client acts in one account. Quotas are the account's, not the process's: with a
//! [`SlotLedger`] every call also takes its slot from one schedule the whole fleet shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// A call slot of the fleet's shared schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetSlot {
    /// The call may go at this time.
    At(DateTime<Utc>),
    /// The next free slot lies further ahead than the caller's priority may reach.
    Busy { next_free: DateTime<Utc> },
}

/// The shared schedule could not be read; the call waits and asks again.
#[derive(Debug, thiserror::Error)]
#[error("the fleet's rate-limit schedule is unavailable: {0}")]
pub struct LedgerError(pub String);

/// Where the fleet's call slots are kept (the database every replica shares).
#[async_trait]
pub trait SlotLedger: Send + Sync {
    /// Takes the next slot of `class`, spaced `interval` after the one before, if it lies within
    /// `within` of now (any slot when `None`); a free schedule's first slot is now.
    async fn take(
        &self,
        class: ApiClass,
        interval: Duration,
        within: Option<Duration>,
    ) -> Result<FleetSlot, LedgerError>;

    /// The schedule's time: wall time, which every replica's clock must agree on.
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// How long a call waits before asking an unavailable ledger again.
const LEDGER_RETRY: Duration = Duration::from_millis(250);
/// A call that wakes this late for its slot books another instead: sent late, it would come
/// closer than an interval to the next slot's call (the 3 % guard leaves 30 ms of any second
/// free: a window's `rate + 1`-th call comes that long after its end, less any lateness).
const LATE: Duration = Duration::from_millis(25);
/// The most a late caller's booking holds the schedule beyond its interval. A process that
/// wakes later than this (plus `LATE`) on every try sends only once it wakes sooner: sending
/// later than its booking allows would crowd the next slot's call, and a wider hole would
/// idle the fleet's quota for longer than a process that slow can use it.
const MAX_SLACK: Duration = Duration::from_secs(1);

/// A group of calls that share a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiClass {
    /// ActionTrail `LookupEvents`.
    LookupEvents,
    /// RAM and IMS calls that change something, but for the network fence's.
    RamWrite,
    /// IMS `SetAccessKeyPolicy`: Alibaba counts each API against its own quota, so the
    /// network fence does not queue behind policy attachments and key disables.
    AccessKeyPolicy,
    /// Everything else.
    Other,
}

impl ApiClass {
    /// The class's name as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LookupEvents => "lookup_events",
            Self::RamWrite => "ram_write",
            Self::AccessKeyPolicy => "access_key_policy",
            Self::Other => "other",
        }
    }
}

/// Who waits longer when both wait for the same class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Forensics,
    Normal,
    /// Policy attach, key disable: stop the attacker first.
    Containment,
}

impl Priority {
    /// How far ahead a call of this priority may book a fleet slot. Containment books any slot;
    /// the others only near ones, so a queue of their bookings never stands in front of
    /// containment on another replica (they poll instead, once per freed slot).
    fn reach(self, interval: Duration) -> Option<Duration> {
        match self {
            Self::Containment => None,
            Self::Normal => Some(interval),
            Self::Forensics => Some(Duration::ZERO),
        }
    }
}

struct Lane {
    interval: Duration,
    next_free: Instant,
    waiting: [usize; 3],
    /// Per priority, whether one of this process's callers is asking the fleet's schedule for
    /// a slot within its reach (see [`FleetTurn`]).
    asking_fleet: [bool; 3],
}

/// Spaces calls per class; higher priorities go first.
pub struct RateLimiter {
    lanes: Mutex<HashMap<ApiClass, Lane>>,
    ledger: Option<Arc<dyn SlotLedger>>,
}

impl RateLimiter {
    /// `rates` gives calls per second for each class; a class without a rate is unlimited.
    pub fn new(rates: &[(ApiClass, f64)]) -> Self {
        let now = Instant::now();
        let lanes = rates
            .iter()
            .filter(|(_, rate)| *rate > 0.0)
            .map(|&(class, rate)| {
                // A 3 % guard: requests reach the server with some jitter, and a quota
                // counted over sliding one-second windows must not see two of ours bunch up.
                // It leaves 30 ms of every second free, more than a call may start late
                // (`LATE`), and costs a burst 3 % over the quota's floor.
                let lane = Lane {
                    interval: Duration::from_secs_f64(1.03 / rate),
                    next_free: now,
                    waiting: [0; 3],
                    asking_fleet: [false; 3],
                };
                (class, lane)
            })
            .collect();
        Self {
            lanes: Mutex::new(lanes),
            ledger: None,
        }
    }

    /// Takes every call's slot from `ledger` as well, so the limits hold for the whole fleet.
    pub fn shared(self, ledger: Arc<dyn SlotLedger>) -> Self {
        Self {
            ledger: Some(ledger),
            ..self
        }
    }

    /// Waits for this class's next slot: first this process's (which orders its own callers
    /// by priority and keeps it from asking the ledger more often than the rate), then the
    /// fleet's.
    pub async fn acquire(&self, class: ApiClass, priority: Priority) {
        let ready = || std::future::ready(Ok::<(), std::convert::Infallible>(()));
        let Ok(()) = self.acquire_ready(class, priority, ready).await;
    }

    /// Waits for this class's next slot as [`Self::acquire`] does, then for `ready` (what the
    /// call still needs before it goes: its credentials, its intent made durable), and returns
    /// what `ready` gave. A call readied later than its slot allows takes another: sent then,
    /// it would come closer than an interval to the next slot's call. `ready` is asked again
    /// for each slot; an error from it ends the wait.
    pub async fn acquire_ready<T, E, F>(
        &self,
        class: ApiClass,
        priority: Priority,
        mut ready: impl FnMut() -> F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        loop {
            let Some((interval, start, _turn)) = self.acquire_local(class, priority).await else {
                return ready().await;
            };
            let Some(ledger) = &self.ledger else {
                let value = ready().await?;
                if Instant::now() <= start + LATE {
                    return Ok(value);
                }
                tracing::debug!(
                    class = class.as_str(),
                    "ready late for a rate-limit slot; taking another"
                );
                continue;
            };
            return acquire_fleet(ledger.as_ref(), class, priority, interval, &mut ready).await;
        }
    }

    /// Waits for this process's slot; the class's interval, the slot's start and, for a caller
    /// that may be refused a fleet slot, its turn to ask; `None` when the class is unlimited.
    async fn acquire_local(
        &self,
        class: ApiClass,
        priority: Priority,
    ) -> Option<(Duration, Instant, Option<FleetTurn<'_>>)> {
        let asks_in_turn = self.ledger.is_some() && priority != Priority::Containment;
        let mut waiting = Waiting {
            lanes: &self.lanes,
            class,
            priority,
            counted: false,
        };
        loop {
            let wait = {
                let mut lanes = lock(&self.lanes);
                let lane = lanes.get_mut(&class)?;
                if waiting.counted {
                    lane.waiting[priority as usize] -= 1;
                    waiting.counted = false;
                }
                let now = Instant::now();
                let outranked = lane.waiting[priority as usize + 1..].iter().any(|&n| n > 0);
                let turn_taken = asks_in_turn && lane.asking_fleet[priority as usize];
                if lane.next_free <= now && !outranked && !turn_taken {
                    // A waiter woken a little after its slot keeps the lane's cadence, so a
                    // queue does not drift back by every wake-up's delay; an idle lane starts
                    // again from now.
                    let start = if now <= lane.next_free + LATE {
                        lane.next_free
                    } else {
                        now
                    };
                    lane.next_free = start + lane.interval;
                    let turn = asks_in_turn.then(|| {
                        lane.asking_fleet[priority as usize] = true;
                        FleetTurn {
                            lanes: &self.lanes,
                            class,
                            priority,
                        }
                    });
                    return Some((lane.interval, start, turn));
                }
                lane.waiting[priority as usize] += 1;
                waiting.counted = true;
                // An outranked caller, or one whose turn to ask the fleet is taken, re-checks
                // after one interval; the others when a slot frees.
                lane.next_free
                    .saturating_duration_since(now)
                    .max(if outranked || turn_taken {
                        lane.interval
                    } else {
                        Duration::ZERO
                    })
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A caller counted among its lane's waiters while it sleeps. A caller dropped mid-wait (its
/// step abandoned on a lost lease, its intent refused) is uncounted here; otherwise lower
/// priorities would defer to it for good.
struct Waiting<'a> {
    lanes: &'a Mutex<HashMap<ApiClass, Lane>>,
    class: ApiClass,
    priority: Priority,
    counted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.counted
            && let Some(lane) = lock(self.lanes).get_mut(&self.class)
        {
            lane.waiting[self.priority as usize] -= 1;
        }
    }
}

/// A lower-priority caller's turn to ask the fleet's schedule, held until it has its slot:
/// one caller per priority and process at a time. While containment keeps the schedule full,
/// a normal or forensics call is refused and asks again when a slot could come within its
/// reach; without turns every such caller of every replica asked at every freed slot.
/// Containment is always granted and takes no turn.
struct FleetTurn<'a> {
    lanes: &'a Mutex<HashMap<ApiClass, Lane>>,
    class: ApiClass,
    priority: Priority,
}

impl Drop for FleetTurn<'_> {
    fn drop(&mut self) {
        if let Some(lane) = lock(self.lanes).get_mut(&self.class) {
            lane.asking_fleet[self.priority as usize] = false;
        }
    }
}

/// The lanes' lock: each holder changes a lane in one step, so a poisoned one is whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Books this call's slot in the fleet's schedule and waits for it. The schedule is in wall
/// time: replicas' clocks must agree (NTP) to within a small part of an interval.
///
/// A call goes at most `LATE` after the start of a booking that holds the schedule for at
/// least one interval from there, so it is spaced from the next slot's call as an on-time call
/// is. One that wakes later gives its slot up and books a wider one, `interval + slack` with
/// the slack the most lateness it has seen (up to `MAX_SLACK`), and goes when it wakes within
/// that slack (plus `LATE`): a process that always wakes late under load still sends, and the
/// next slot's call still comes at least an interval (less `LATE`) after it.
async fn acquire_fleet<T, E, F>(
    ledger: &dyn SlotLedger,
    class: ApiClass,
    priority: Priority,
    interval: Duration,
    ready: &mut impl FnMut() -> F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let within = priority.reach(interval);
    let mut slack = Duration::ZERO;
    loop {
        let wake = match ledger.take(class, interval + slack, within).await {
            Ok(FleetSlot::At(at)) => {
                // Not even a zero wait for a slot already come: tokio's timer rounds every
                // sleep up to its next millisecond tick, which the act would wait out.
                let wait = until(ledger, at);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                let value = ready().await?;
                let late = (ledger.now() - at).to_std().unwrap_or(Duration::ZERO);
                if late <= slack + LATE {
                    return Ok(value);
                }
                slack = slack.max(late).min(MAX_SLACK);
                tracing::debug!(
                    class = class.as_str(),
                    late_ms = late.as_millis() as u64,
                    slack_ms = slack.as_millis() as u64,
                    "late for a rate-limit slot; booking a wider one"
                );
                Duration::ZERO
            }
            Ok(FleetSlot::Busy { next_free }) => {
                // Ask again when the slot comes within reach.
                let reach =
                    chrono::Duration::from_std(within.unwrap_or_default()).unwrap_or_default();
                until(ledger, next_free - reach).max(Duration::from_millis(1))
            }
            Err(err) => {
                tracing::warn!(class = class.as_str(), error = %err, "rate-limit slot unavailable; waiting");
                LEDGER_RETRY
            }
        };
        tokio::time::sleep(wake).await;
    }
}

/// The wait from the schedule's now until `at` (none when it has passed).
fn until(ledger: &dyn SlotLedger, at: DateTime<Utc>) -> Duration {
    (at - ledger.now()).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_class_rate() {
        let limiter = RateLimiter::new(&[(ApiClass::LookupEvents, 2.0)]);
        let start = Instant::now();
        for _ in 0..5 {
            limiter
                .acquire(ApiClass::LookupEvents, Priority::Normal)
                .await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(2060));
        // Unlimited classes never wait.
        let before = Instant::now();
        limiter.acquire(ApiClass::Other, Priority::Normal).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_a_little_after_its_slot_keeps_the_lanes_cadence() {
        let limiter = RateLimiter::new(&[(ApiClass::RamWrite, 10.0)]);
        let start = Instant::now();
        limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
        // The next slot is at 103 ms; this caller comes 10 ms after it.
        tokio::time::sleep(Duration::from_millis(113)).await;
        limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
        limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
        assert_eq!(start.elapsed(), Duration::from_millis(206));
        // Long idle, a lane starts again from the caller's time.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = Instant::now();
        limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
        limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
        assert_eq!(idle.elapsed(), Duration::from_millis(103));
    }

    /// A step abandoned while its call waits (its lease lost, its intent refused) must not
    /// leave the call counted as waiting: lower priorities would defer to it for good.
    #[tokio::test(start_paused = true)]
    async fn a_waiter_dropped_mid_wait_no_longer_outranks_the_lane() {
        let limiter = RateLimiter::new(&[(ApiClass::RamWrite, 1.0)]);
        limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            limiter.acquire(ApiClass::RamWrite, Priority::Containment),
        )
        .await;
        assert!(
            abandoned.is_err(),
            "the containment call waited for its slot"
        );
        let start = Instant::now();
        tokio::time::timeout(
            Duration::from_secs(5),
            limiter.acquire(ApiClass::RamWrite, Priority::Normal),
        )
        .await
        .expect("a normal call gets the next slot once the containment caller is gone");
        assert_eq!(start.elapsed(), Duration::from_millis(930));
    }

    /// The fleet's schedule in memory, answering each take `lateness` after the slot it grants:
    /// to `acquire_fleet` the same as a caller that wakes that late (a starved runtime).
    struct MemoryLedger {
        origin: Instant,
        base: DateTime<Utc>,
        next_free: Mutex<DateTime<Utc>>,
        lateness: Duration,
        refusals: AtomicUsize,
    }

    impl MemoryLedger {
        fn new(lateness: Duration) -> Self {
            let base = Utc::now();
            Self {
                origin: Instant::now(),
                base,
                next_free: Mutex::new(base),
                lateness,
                refusals: AtomicUsize::new(0),
            }
        }

        fn next_free(&self) -> DateTime<Utc> {
            *lock(&self.next_free)
        }
    }

    #[async_trait]
    impl SlotLedger for MemoryLedger {
        async fn take(
            &self,
            _class: ApiClass,
            interval: Duration,
            within: Option<Duration>,
        ) -> Result<FleetSlot, LedgerError> {
            let now = self.now();
            let at = {
                let mut next_free = lock(&self.next_free);
                let at = (*next_free).max(now);
                if within.is_some_and(|within| at > now + within) {
                    self.refusals.fetch_add(1, Ordering::Relaxed);
                    return Ok(FleetSlot::Busy {
                        next_free: *next_free,
                    });
                }
                *next_free = at + interval;
                at
            };
            tokio::time::sleep(until(self, at) + self.lateness).await;
            Ok(FleetSlot::At(at))
        }

        fn now(&self) -> DateTime<Utc> {
            self.base + self.origin.elapsed()
        }
    }

    /// A ledger whose every slot is the moment it is asked for, taken at once.
    struct FreeLedger;

    #[async_trait]
    impl SlotLedger for FreeLedger {
        async fn take(
            &self,
            _class: ApiClass,
            _interval: Duration,
            _within: Option<Duration>,
        ) -> Result<FleetSlot, LedgerError> {
            Ok(FleetSlot::At(
                self.now() - chrono::Duration::microseconds(1),
            ))
        }
    }

    /// A slot that has already come is used at once: a sleep, however short, would wait for
    /// the timer's next millisecond tick (seen as about a millisecond before every act).
    #[tokio::test(start_paused = true)]
    async fn a_slot_already_come_is_used_without_waiting_for_the_timer() {
        let limiter = RateLimiter::new(&[(ApiClass::RamWrite, 10.0)]).shared(Arc::new(FreeLedger));
        // Between two of the timer's ticks, where a sleep of nothing still waits for the next.
        tokio::time::advance(Duration::from_micros(300)).await;
        let start = Instant::now();
        limiter
            .acquire(ApiClass::RamWrite, Priority::Containment)
            .await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    /// A process that wakes later than `LATE` on every try must still send, and never so late
    /// that the next slot's call comes less than an interval after its own: the cloud would
    /// see more than the rate in a second (seen in CI: 11 RAM writes against 10/s, two of them
    /// 62 ms apart).
    #[tokio::test(start_paused = true)]
    async fn a_caller_that_always_wakes_late_sends_an_interval_before_the_next_slot() {
        let interval = Duration::from_millis(103);
        let ledger = MemoryLedger::new(Duration::from_millis(60));
        for _ in 0..5 {
            tokio::time::timeout(
                Duration::from_secs(10),
                acquire_fleet(
                    &ledger,
                    ApiClass::RamWrite,
                    Priority::Containment,
                    interval,
                    &mut || std::future::ready(Ok::<(), ()>(())),
                ),
            )
            .await
            .expect("a caller that always wakes late sends eventually")
            .unwrap();
            let sent = ledger.now();
            let gap = (ledger.next_free() - sent).to_std().unwrap_or_default();
            assert!(
                gap >= interval,
                "the next slot lies {gap:?} after a call sent late, less than the interval"
            );
        }
    }

    /// What a call needs before it goes (its intent made durable, its credentials) comes 60 ms
    /// after its slot the first time, at once after; `sent` records when the call went.
    fn readied_late_once<'a>(
        sent: &'a Mutex<Vec<Instant>>,
    ) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Result<(), ()>> + 'a>> + 'a {
        let mut first = true;
        move || {
            let delay = if std::mem::take(&mut first) {
                Duration::from_millis(60)
            } else {
                Duration::ZERO
            };
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                lock(sent).push(Instant::now());
                Ok(())
            })
        }
    }

    /// A call held past its slot by what it waits for (in CI, its intent's commit on a busy
    /// SQLite) must not go then: the next slot's call would follow it within less than an
    /// interval. With the fleet's schedule and without.
    #[tokio::test(start_paused = true)]
    async fn a_call_readied_after_its_slot_takes_another() {
        let interval = Duration::from_millis(103);
        let ledger = Arc::new(MemoryLedger::new(Duration::ZERO));
        let fleet = RateLimiter::new(&[(ApiClass::RamWrite, 10.0)]).shared(ledger.clone());
        let local = RateLimiter::new(&[(ApiClass::RamWrite, 10.0)]);
        for limiter in [fleet, local] {
            let sent = Mutex::new(Vec::new());
            limiter
                .acquire_ready(
                    ApiClass::RamWrite,
                    Priority::Containment,
                    readied_late_once(&sent),
                )
                .await
                .unwrap();
            limiter
                .acquire(ApiClass::RamWrite, Priority::Containment)
                .await;
            let first = *lock(&sent).last().unwrap();
            let gap = Instant::now() - first;
            assert!(
                gap >= interval - LATE,
                "the next call followed one sent late within {gap:?}"
            );
        }
    }

    /// While another replica's containment keeps the schedule full, this process's normal
    /// callers ask it one at a time, each refused about once; they used to ask all at once at
    /// every freed slot (15 refusals for these 5 callers).
    #[tokio::test(start_paused = true)]
    async fn lower_priorities_ask_a_full_fleet_schedule_one_at_a_time() {
        let ledger = Arc::new(MemoryLedger::new(Duration::ZERO));
        let limiter =
            Arc::new(RateLimiter::new(&[(ApiClass::RamWrite, 10.0)]).shared(ledger.clone()));
        // Another replica's containment has booked the next two seconds.
        *lock(&ledger.next_free) = ledger.now() + Duration::from_secs(2);
        let callers: Vec<_> = (0..5)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        let refusals = ledger.refusals.load(Ordering::Relaxed);
        assert!(refusals <= 5, "{refusals} refusals for 5 callers");
    }

    /// Normal callers waiting on one replica, their turns taken one at a time, do not hold
    /// back containment arriving later on another: its calls all go first.
    #[tokio::test(start_paused = true)]
    async fn containment_on_another_replica_goes_before_normal_callers_waiting_here() {
        let ledger = Arc::new(MemoryLedger::new(Duration::ZERO));
        *lock(&ledger.next_free) = ledger.now() + Duration::from_secs(1);
        let replicas = [(); 2].map(|_| {
            Arc::new(RateLimiter::new(&[(ApiClass::RamWrite, 10.0)]).shared(ledger.clone()))
        });
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut callers = Vec::new();
        for (replica, priority) in [(0, Priority::Normal); 3]
            .into_iter()
            .chain([(1, Priority::Containment); 5])
        {
            let (limiter, order) = (replicas[replica].clone(), order.clone());
            callers.push(tokio::spawn(async move {
                limiter.acquire(ApiClass::RamWrite, priority).await;
                order.lock().unwrap().push(priority);
            }));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for caller in callers {
            caller.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let mut expected = vec![Priority::Containment; 5];
        expected.extend([Priority::Normal; 3]);
        assert_eq!(order, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn containment_goes_before_waiting_forensics() {
        let limiter = Arc::new(RateLimiter::new(&[(ApiClass::RamWrite, 1.0)]));
        limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [
            ("forensics-1", Priority::Forensics),
            ("forensics-2", Priority::Forensics),
            ("containment", Priority::Containment),
        ] {
            let (limiter, order) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                limiter.acquire(ApiClass::RamWrite, priority).await;
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], "containment");
    }
}
