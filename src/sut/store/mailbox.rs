//! Two small single-threaded async primitives the store's drivers need and madsim does not give:
//! a queue a task can wait on (`Queue`), and replies matched to waiting requests by key
//! (`Replies`). Both live inside one node's tasks (one OS thread, `Rc`), hold no lock across an
//! await, and are dropped with the node when it crashes.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct QueueState<T> {
    items: VecDeque<T>,
    waker: Option<Waker>,
}

/// A FIFO with one waiting consumer.
pub struct Queue<T> {
    state: Rc<RefCell<QueueState<T>>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { state: self.state.clone() }
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue { state: Rc::new(RefCell::new(QueueState { items: VecDeque::new(), waker: None })) }
    }
}

impl<T> Queue<T> {
    pub fn push(&self, item: T) {
        let mut state = self.state.borrow_mut();
        state.items.push_back(item);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// Everything queued now, waiting until there is at least one item.
    pub async fn take_all(&self) -> Vec<T> {
        std::future::poll_fn(|context| {
            let mut state = self.state.borrow_mut();
            if state.items.is_empty() {
                state.waker = Some(context.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(state.items.drain(..).collect())
            }
        })
        .await
    }

    pub fn len(&self) -> usize {
        self.state.borrow().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Slot<V> {
    value: Option<V>,
    waker: Option<Waker>,
}

/// Replies keyed by request: a task registers a key, sends its request, and awaits the reply (or a
/// timeout); the receiving loop delivers replies by key. Replies for keys nobody waits on any
/// more (late, duplicated) are dropped.
pub struct Replies<K: Ord + Clone, V> {
    slots: Rc<RefCell<BTreeMap<K, Slot<V>>>>,
}

impl<K: Ord + Clone, V> Clone for Replies<K, V> {
    fn clone(&self) -> Self {
        Replies { slots: self.slots.clone() }
    }
}

impl<K: Ord + Clone, V> Default for Replies<K, V> {
    fn default() -> Self {
        Replies { slots: Rc::new(RefCell::new(BTreeMap::new())) }
    }
}

impl<K: Ord + Clone, V> Replies<K, V> {
    /// Delivers a reply; returns whether anyone was waiting for it.
    pub fn deliver(&self, key: &K, value: V) -> bool {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(key) else { return false };
        if slot.value.is_some() {
            return false;
        }
        slot.value = Some(value);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
        true
    }

    /// Waits for the reply to `key` until `timer` ends (a sleep on whichever clock the caller
    /// keeps time by). Register the key (with `expect`) before sending the request, so an
    /// immediate reply is not dropped.
    pub async fn wait(&self, key: K, timer: impl Future<Output = ()>) -> Option<V> {
        let reply = WaitReply { slots: self.slots.clone(), key: key.clone() };
        let result = match madsim::export::futures::future::select(Box::pin(reply), Box::pin(timer)).await {
            madsim::export::futures::future::Either::Left((value, _)) => Some(value),
            madsim::export::futures::future::Either::Right(_) => None,
        };
        self.slots.borrow_mut().remove(&key);
        result
    }

    /// Registers interest in `key`.
    pub fn expect(&self, key: K) {
        self.slots.borrow_mut().insert(key, Slot { value: None, waker: None });
    }

    pub fn waiting(&self) -> usize {
        self.slots.borrow().len()
    }
}

struct WaitReply<K: Ord, V> {
    slots: Rc<RefCell<BTreeMap<K, Slot<V>>>>,
    key: K,
}

impl<K: Ord, V> Future for WaitReply<K, V> {
    type Output = V;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<V> {
        let mut slots = self.slots.borrow_mut();
        let Some(slot) = slots.get_mut(&self.key) else {
            // Nobody registered the key: nothing will ever arrive; the timeout ends the wait.
            return Poll::Pending;
        };
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(context.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The next message for a node, or `None` once `timer` fires first. The timer is borrowed, so a
/// loop keeps one timer across many messages and replaces it only after it fired.
pub async fn recv_or_timer<M: crate::world::Message>(
    context: &crate::world::NodeContext<M>,
    timer: Pin<&mut impl Future<Output = ()>>,
) -> Option<crate::world::Envelope<M>> {
    let receive = std::pin::pin!(context.recv());
    match madsim::export::futures::future::select(receive, timer).await {
        madsim::export::futures::future::Either::Left((envelope, _)) => Some(envelope),
        madsim::export::futures::future::Either::Right(_) => None,
    }
}

#[derive(Default)]
struct SignalState {
    generation: u64,
    wakers: Vec<Waker>,
}

/// A wake-up call for every waiting task: `wait` returns at the next `notify`, or at its
/// timeout, whichever comes first. Waiters re-check their condition after it returns.
#[derive(Clone, Default)]
pub struct Signal {
    state: Rc<RefCell<SignalState>>,
}

impl Signal {
    pub fn notify(&self) {
        let mut state = self.state.borrow_mut();
        state.generation += 1;
        for waker in state.wakers.drain(..) {
            waker.wake();
        }
    }

    /// Waits for the next `notify`, or until `timer` ends (a sleep on the node's clock).
    pub async fn wait(&self, timer: impl Future<Output = ()>) {
        let seen = self.state.borrow().generation;
        let notified = std::future::poll_fn(|context| {
            let mut state = self.state.borrow_mut();
            if state.generation != seen {
                Poll::Ready(())
            } else {
                state.wakers.push(context.waker().clone());
                Poll::Pending
            }
        });
        let _ = madsim::export::futures::future::select(Box::pin(notified), Box::pin(timer)).await;
    }
}
