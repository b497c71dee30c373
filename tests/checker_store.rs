//! The store's checkers, `linearizable` and `no_lost_write`, on hand-told histories. Every failing
//! case is paired with the same story with one fact flipped, which must pass: the checker blames
//! that fact and nothing else.

use migsim::checker::linearizability::formats::{parse_text, Format, History};
use migsim::checker::{kv_history, linearizable, no_lost_write, Judgement};
use migsim::trace::{write_jsonl, Event, EventKind, OpFunction, Outcome};
use serde_json::{json, Value};

/// A run's client operations, told one at a time; `events()` orders them by time.
#[derive(Default)]
struct Story {
    events: Vec<(u64, EventKind)>,
    next_op: u64,
}

/// One client, about to call something.
struct Client<'a> {
    story: &'a mut Story,
    client: u32,
}

/// An operation being told: what it asks for, then when it was called and how it ended.
struct Call<'a> {
    story: &'a mut Story,
    op: u64,
    client: u32,
    key: String,
    f: OpFunction,
    value: Value,
}

impl Story {
    fn new() -> Story {
        Story::default()
    }

    fn client(&mut self, client: u32) -> Client<'_> {
        Client { story: self, client }
    }

    /// The heal phase's read-back of `key`: a get that returns `value` at `at_us`, and the
    /// `read_back` event that marks it as the key's final state.
    fn read_back(&mut self, key: &str, value: Option<&str>, at_us: u64) {
        let op = self.next_op;
        self.client(99).get(key).called(at_us - 1).returned(json!(value), at_us);
        self.events.push((at_us, EventKind::ReadBack { op, key: key.into(), value: value.map(str::to_owned) }));
    }

    fn note(&mut self, text: &str, at_us: u64) {
        self.events.push((at_us, EventKind::Note { text: text.into() }));
    }

    fn events(&self) -> Vec<Event> {
        let mut timed: Vec<&(u64, EventKind)> = self.events.iter().collect();
        timed.sort_by_key(|(at_us, _)| *at_us);
        timed
            .into_iter()
            .enumerate()
            .map(|(seq, (at_us, kind))| Event {
                seq: seq as u64,
                at_us: *at_us,
                node: Some(1),
                incarnation: 0,
                kind: kind.clone(),
                summary: String::new(),
            })
            .collect()
    }
}

impl<'a> Client<'a> {
    fn put(self, key: &str, token: &str) -> Call<'a> {
        self.call(key, OpFunction::Put, json!(token))
    }

    fn append(self, key: &str, token: &str) -> Call<'a> {
        self.call(key, OpFunction::Append, json!(token))
    }

    fn cas(self, key: &str, expected: Option<&str>, new: &str) -> Call<'a> {
        self.call(key, OpFunction::Cas, json!([expected, new]))
    }

    fn get(self, key: &str) -> Call<'a> {
        self.call(key, OpFunction::Get, Value::Null)
    }

    fn call(self, key: &str, f: OpFunction, value: Value) -> Call<'a> {
        let op = self.story.next_op;
        self.story.next_op += 1;
        Call { story: self.story, op, client: self.client, key: key.into(), f, value }
    }
}

impl Call<'_> {
    fn called(self, at_us: u64) -> Self {
        let kind = EventKind::OpInvoke {
            op: self.op,
            client: self.client,
            key: self.key.clone(),
            partition: 0,
            f: self.f,
            value: self.value.clone(),
        };
        self.story.events.push((at_us, kind));
        self
    }

    /// A put or append acknowledged at `at_us`.
    fn ok(self, at_us: u64) -> u64 {
        self.ended(Outcome::Ok, Value::Null, at_us)
    }

    /// A get or cas that returned `result` at `at_us`.
    fn returned(self, result: Value, at_us: u64) -> u64 {
        self.ended(Outcome::Ok, result, at_us)
    }

    /// Timed out at `at_us`: indeterminate.
    fn timed_out(self, at_us: u64) -> u64 {
        self.ended(Outcome::Info, Value::Null, at_us)
    }

    /// Definitely not applied.
    fn failed(self, at_us: u64) -> u64 {
        self.ended(Outcome::Fail, Value::Null, at_us)
    }

    /// Never completed before the run ended: indeterminate.
    fn never_returns(self) -> u64 {
        self.op
    }

    fn ended(self, outcome: Outcome, result: Value, at_us: u64) -> u64 {
        let kind = EventKind::OpComplete {
            op: self.op,
            client: self.client,
            key: self.key,
            partition: 0,
            f: self.f,
            value: self.value,
            outcome,
            result,
        };
        self.story.events.push((at_us, kind));
        self.op
    }
}

fn passes(judgement: &Judgement) -> bool {
    judgement.violations.is_empty() && judgement.inconclusive.is_empty()
}

/// The one violation's message, for failing cases.
fn violation(judgement: &Judgement, checker: &str) -> String {
    assert!(judgement.inconclusive.is_empty(), "unexpected inconclusive: {:?}", judgement.inconclusive);
    assert_eq!(judgement.violations.len(), 1, "expected one violation: {judgement:?}");
    assert_eq!(judgement.violations[0].checker, checker);
    judgement.violations[0].message.clone()
}

fn assert_mentions(message: &str, needles: &[&str]) {
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} missing from:\n{message}");
    }
}

// ---- no_lost_write ----

/// Client 1's put of 1.1; is acknowledged; client 2's put of 2.1; started earlier and returned
/// at `overwriter_returns_us`; the key ends as 2.1;.
fn put_then_final_value_of_another_put(overwriter_returns_us: u64) -> Vec<Event> {
    let mut story = Story::new();
    story.client(2).put("k", "2.1;").called(5).ok(overwriter_returns_us);
    story.client(1).put("k", "1.1;").called(10).ok(20);
    story.read_back("k", Some("2.1;"), 1_000);
    story.events()
}

#[test]
fn no_lost_write_an_acknowledged_put_overwritten_by_an_earlier_put_is_lost() {
    let message = violation(&no_lost_write(&put_then_final_value_of_another_put(8)), "no_lost_write");
    assert_mentions(
        &message,
        &[
            "key \"k\": acknowledged put op 1 (client 1, \"1.1;\", called 10us, returned 20us) is lost",
            "final value \"2.1;\" (read back by op 2, called 999us)",
            "put op 0 (client 2, \"2.1;\", called 5us, returned 8us), which returned before op 1 was called",
        ],
    );
    assert!(message.lines().count() <= 4, "{message}");
    // The overwriting put was still running when the lost one was called: it may come after it.
    assert!(passes(&no_lost_write(&put_then_final_value_of_another_put(15))));
}

/// A put that returns while the read-back's get is already running may be ordered after that
/// read: its absence from the read value proves nothing. (Judging by the read's return instead of
/// its call once flagged such writes as lost.)
fn put_racing_the_read_back(put_returned_us: u64) -> Vec<Event> {
    let mut story = Story::new();
    story.client(2).put("k", "2.1;").called(5).ok(8);
    story.client(1).put("k", "1.1;").called(990).ok(put_returned_us);
    story.read_back("k", Some("2.1;"), 1_000);
    story.events()
}

#[test]
fn no_lost_write_a_write_returning_after_the_read_back_was_called_is_not_judged() {
    assert!(passes(&no_lost_write(&put_racing_the_read_back(999))));
    let message = violation(&no_lost_write(&put_racing_the_read_back(998)), "no_lost_write");
    assert_mentions(&message, &["acknowledged put op 1 (client 1, \"1.1;\", called 990us, returned 998us) is lost"]);
}

fn put_then_append(final_value: &str) -> Vec<Event> {
    let mut story = Story::new();
    story.client(1).put("k", "1.1;").called(10).ok(20);
    story.client(2).append("k", "2.1;").called(30).ok(40);
    story.read_back("k", Some(final_value), 1_000);
    story.events()
}

#[test]
fn no_lost_write_an_acknowledged_append_must_be_in_the_final_value() {
    let message = violation(&no_lost_write(&put_then_append("1.1;")), "no_lost_write");
    assert_mentions(&message, &["acknowledged append op 1 (client 2, \"2.1;\"", "put op 0"]);
    assert!(passes(&no_lost_write(&put_then_append("1.1;2.1;"))));
}

fn put_then_cas(cas_result: bool) -> Vec<Event> {
    let mut story = Story::new();
    story.client(1).put("k", "1.1;").called(10).ok(20);
    story.client(2).cas("k", Some("1.1;"), "2.1;").called(30).returned(json!(cas_result), 40);
    story.read_back("k", Some("1.1;"), 1_000);
    story.events()
}

#[test]
fn no_lost_write_a_cas_that_returned_true_is_a_write_and_false_is_not() {
    let message = violation(&no_lost_write(&put_then_cas(true)), "no_lost_write");
    assert_mentions(&message, &["acknowledged cas op 1 (client 2, \"2.1;\""]);
    assert!(passes(&no_lost_write(&put_then_cas(false))));
}

#[derive(Clone, Copy)]
enum Ending {
    Ok,
    TimedOut,
    NeverReturns,
    Failed,
}

fn told(call: Call<'_>, ending: Ending, at_us: u64) {
    match ending {
        Ending::Ok => call.ok(at_us),
        Ending::TimedOut => call.timed_out(at_us),
        Ending::NeverReturns => call.never_returns(),
        Ending::Failed => call.failed(at_us),
    };
}

/// A put that ended before the acknowledged put was called set the final value, unless it is
/// indeterminate: then it may have taken effect later.
fn overwriter_that(ending: Ending) -> Vec<Event> {
    let mut story = Story::new();
    told(story.client(2).put("k", "2.1;").called(5), ending, 8);
    story.client(1).put("k", "1.1;").called(10).ok(20);
    story.read_back("k", Some("2.1;"), 1_000);
    story.events()
}

#[test]
fn no_lost_write_an_indeterminate_overwriter_may_take_effect_late() {
    violation(&no_lost_write(&overwriter_that(Ending::Ok)), "no_lost_write");
    assert!(passes(&no_lost_write(&overwriter_that(Ending::TimedOut))));
    assert!(passes(&no_lost_write(&overwriter_that(Ending::NeverReturns))));
}

fn acknowledged_put(read_back: Option<Option<&str>>) -> Vec<Event> {
    let mut story = Story::new();
    story.client(1).put("k", "1.1;").called(10).ok(20);
    story.client(1).put("k", "1.2;").called(30).ok(40);
    if let Some(value) = read_back {
        story.read_back("k", value, 2_500_000);
    }
    story.events()
}

#[test]
fn no_lost_write_a_key_never_read_back_is_a_violation() {
    let message = violation(&no_lost_write(&acknowledged_put(None)), "no_lost_write");
    assert_mentions(
        &message,
        &[
            "key \"k\" was never read back",
            "the end of the heal phase",
            "the last of its 2 acknowledged writes is put op 1 (client 1, \"1.2;\", called 30us, returned 40us)",
        ],
    );
    assert!(passes(&no_lost_write(&acknowledged_put(Some(Some("1.2;"))))));
}

#[test]
fn no_lost_write_an_absent_final_value_loses_every_acknowledged_write() {
    let message = violation(&no_lost_write(&acknowledged_put(Some(None))), "no_lost_write");
    assert_mentions(
        &message,
        &[
            "key \"k\" was absent when read back (by op 2, called 2.5s), so acknowledged put op 0",
            "1 more acknowledged write on \"k\" is lost too: op 1 (put \"1.2;\")",
        ],
    );
    assert!(passes(&no_lost_write(&acknowledged_put(Some(Some("1.2;"))))));
}

fn final_value_with(extra: &str) -> Vec<Event> {
    let mut story = Story::new();
    story.client(1).put("k", "1.1;").called(10).ok(20);
    story.client(2).append("k", "2.1;").called(30).failed(40);
    story.client(3).put("j", "3.1;").called(30).ok(40);
    story.read_back("j", Some("3.1;"), 1_000);
    story.read_back("k", Some(&format!("1.1;{extra}")), 1_000);
    story.events()
}

#[test]
fn no_lost_write_a_token_nobody_wrote_is_a_violation() {
    let message = violation(&no_lost_write(&final_value_with("9.9;")), "no_lost_write");
    assert_mentions(
        &message,
        &[
            "key \"k\": the final value \"1.1;9.9;\"",
            "holds \"9.9;\", which no acknowledged or indeterminate write on \"k\" wrote",
        ],
    );
    let message = violation(&no_lost_write(&final_value_with("2.1;")), "no_lost_write");
    assert_mentions(&message, &["\"2.1;\"", "op 1 tried, and failed"]);
    let message = violation(&no_lost_write(&final_value_with("3.1;")), "no_lost_write");
    assert_mentions(&message, &["\"3.1;\"", "wrote it to key \"j\""]);
    assert!(passes(&no_lost_write(&final_value_with(""))));
}

/// An append after an acknowledged put; the key ends with the put's value alone.
fn append_that(ending: Ending) -> Vec<Event> {
    let mut story = Story::new();
    story.client(1).put("k", "1.1;").called(10).ok(20);
    told(story.client(2).append("k", "2.1;").called(30), ending, 40);
    story.read_back("k", Some("1.1;"), 1_000);
    story.events()
}

#[test]
fn no_lost_write_indeterminate_and_failed_writes_may_be_missing() {
    violation(&no_lost_write(&append_that(Ending::Ok)), "no_lost_write");
    assert!(passes(&no_lost_write(&append_that(Ending::TimedOut))));
    assert!(passes(&no_lost_write(&append_that(Ending::NeverReturns))));
    assert!(passes(&no_lost_write(&append_that(Ending::Failed))));
}

#[test]
fn no_lost_write_the_last_read_back_counts() {
    let twice = |last: &str| {
        let mut story = Story::new();
        story.client(1).put("k", "1.1;").called(10).ok(20);
        story.read_back("k", None, 500);
        story.read_back("k", Some(last), 1_000);
        story.events()
    };
    assert!(passes(&no_lost_write(&twice("1.1;"))));
    violation(&no_lost_write(&twice("9.9;")), "no_lost_write");
}

#[test]
fn no_lost_write_reports_a_few_keys_in_full_and_counts_the_rest() {
    let mut story = Story::new();
    for index in 0..8u32 {
        let key = format!("k{index}");
        story.client(index).put(&key, &format!("{index}.1;")).called(10).ok(20);
        story.read_back(&key, None, 1_000);
    }
    let judgement = no_lost_write(&story.events());
    assert_eq!(judgement.violations.len(), 6, "{judgement:?}");
    assert!(judgement.violations[0].message.starts_with("key \"k0\" was absent"));
    assert_eq!(
        judgement.violations[5].message,
        "and 3 more keys with lost or unexplained writes: \"k5\", \"k6\", \"k7\""
    );
}

#[test]
fn no_lost_write_a_value_that_is_not_a_token_is_inconclusive() {
    let mut story = Story::new();
    story.client(1).put("k", "plain").called(10).ok(20);
    story.read_back("k", Some("plain"), 1_000);
    let judgement = no_lost_write(&story.events());
    assert!(judgement.violations.is_empty());
    assert_mentions(&judgement.inconclusive.join("\n"), &["cannot judge key \"k\"", "put op 0 writes \"plain\""]);
}

// ---- linearizable ----

/// An acknowledged put, then a read that saw the key absent.
fn read_absent_from(called_us: u64) -> Vec<Event> {
    let mut story = Story::new();
    story.client(1).put("k", "1.1;").called(10).ok(20);
    story.client(2).get("k").called(called_us).returned(Value::Null, 40);
    story.events()
}

#[test]
fn linearizable_a_stale_read_after_an_acknowledged_put_is_illegal() {
    let message = violation(&linearizable(&read_absent_from(30)), "linearizable");
    assert_mentions(&message, &["key \"k\" is not linearizable", "op 1 client 2: get -> absent", "op 0 client 1"]);
    assert!(message.lines().count() <= 20, "{message}");
    // The same read, called while the put was running, may be ordered before it.
    assert!(passes(&linearizable(&read_absent_from(15))));
}

#[test]
fn linearizable_a_malformed_history_is_a_violation() {
    let history = |invoked: bool| {
        let mut story = Story::new();
        let call = story.client(1).put("k", "1.1;");
        let call = if invoked { call.called(10) } else { call };
        call.ok(20);
        story.events()
    };
    let message = violation(&linearizable(&history(false)), "linearizable");
    assert_mentions(&message, &["malformed history", "op 0 completes but was never invoked", "at event 0 (20us)"]);
    assert!(passes(&linearizable(&history(true))));
    violation(&no_lost_write(&history(false)), "no_lost_write");
}

// ---- the history itself ----

#[test]
fn events_and_their_json_lines_give_the_same_history() {
    let mut story = Story::new();
    story.client(1).put("a", "1.1;").called(10).ok(20);
    story.client(2).cas("a", Some("1.1;"), "2.1;").called(15).returned(json!(true), 30);
    story.client(3).cas("b", None, "3.1;").called(16).returned(json!(false), 31);
    story.client(4).append("b", "4.1;").called(17).timed_out(50);
    story.client(5).put("a", "5.1;").called(18).failed(25);
    story.client(6).get("a").called(19).returned(json!("1.1;"), 29);
    story.client(7).append("c", "7.1;").called(40).never_returns();
    story.client(8).get("b").called(41).timed_out(60);
    story.note("noise the reader skips", 45);
    story.read_back("a", Some("2.1;"), 1_000);
    story.read_back("b", None, 1_001);
    let events = story.events();
    let from_events = kv_history(&events).expect("well formed");
    assert_eq!(from_events.operations.len(), 9, "the failed put is dropped, the rest kept");
    let mut jsonl = Vec::new();
    write_jsonl(&events, &mut jsonl).expect("written to memory");
    let parsed = parse_text("trace.jsonl", std::str::from_utf8(&jsonl).expect("utf-8"), Format::Jsonl, None)
        .expect("the reader accepts the trace");
    assert_eq!(parsed.history, History::Kv(from_events));
}
