//! The reminder sample: one function written once with `eddy-sdk`, deployed three ways.
//!
//! `example/reminder` counts the `"hit"` messages of each address and writes
//! `"{id}: count={count}"` to the egress `example/out` for each. On the first hit it sends
//! itself `"remind"` 200 ms later (cancellation token `remind-{id}`); on that reminder it sets
//! `reminded` and writes `"{id}: reminder count={count}"`. Any other message fails the
//! invocation, so bad input ends in the runtime's dead letters.
//!
//! The same [`functions`] run:
//! - embedded in the runtime: `src/bin/reminder-eddy.rs` + `embedded.yaml`;
//! - over HTTP: `src/bin/reminder-http.rs` + `http.yaml`;
//! - on AWS Lambda (or `cargo lambda watch`): `src/bin/reminder-lambda.rs` + `lambda.yaml`.
//!
//! See README.md for the commands.

use eddy_sdk::{
    BoolType, BoxError, Context, EgressMessage, Functions, LongType, Message, OutgoingMessage,
    ValueSpec,
};
use std::time::Duration;

/// The function type.
pub const REMINDER: &str = "example/reminder";
/// The egress every record goes to.
pub const EGRESS: &str = "example/out";
/// How long after the first hit the reminder comes.
pub const REMIND_AFTER: Duration = Duration::from_millis(200);

/// How many hits the address has seen.
pub const COUNT: ValueSpec<LongType> = ValueSpec::new("count", LongType);
/// Whether the reminder has fired.
pub const REMINDED: ValueSpec<BoolType> = ValueSpec::new("reminded", BoolType);

/// The sample's functions: `example/reminder`.
pub fn functions() -> Functions {
    match Functions::new().register(REMINDER, &[&COUNT, &REMINDED], reminder) {
        Ok(functions) => functions,
        // The registration is fixed in this file: a failure is a bug here, not bad input.
        Err(e) => panic!("the reminder sample's registration is invalid: {e}"),
    }
}

/// The handler of `example/reminder`.
pub async fn reminder(context: Context, message: Message) -> Result<(), BoxError> {
    let id = context.address().id().to_string();
    let storage = context.storage();
    match message.as_string()?.as_str() {
        "hit" => {
            let count = storage.get(&COUNT)?.unwrap_or(0) + 1;
            storage.set(&COUNT, &count)?;
            context.send_egress(EgressMessage::string(
                EGRESS,
                format!("{id}: count={count}"),
            )?);
            if count == 1 {
                let me = context.address().clone();
                context.send_after_with_token(
                    REMIND_AFTER,
                    format!("remind-{id}"),
                    OutgoingMessage::string(me, "remind"),
                )?;
            }
        }
        "remind" => {
            storage.set(&REMINDED, &true)?;
            let count = storage.get(&COUNT)?.unwrap_or(0);
            context.send_egress(EgressMessage::string(
                EGRESS,
                format!("{id}: reminder count={count}"),
            )?);
        }
        other => {
            return Err(format!(
                "{REMINDER} takes the strings \"hit\" or \"remind\", got {other:?}"
            )
            .into())
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::testkit::{Call, Harness};
    use eddy_sdk::StringType;

    fn egress(effects: &eddy_sdk::testkit::Effects) -> Vec<String> {
        effects
            .egress
            .iter()
            .map(|record| {
                assert_eq!(record.egress(), EGRESS);
                record.value(&StringType).expect("a string record")
            })
            .collect()
    }

    #[tokio::test]
    async fn the_first_hit_counts_and_schedules_one_reminder() {
        let mut harness = Harness::new(&functions(), REMINDER).unwrap();
        let effects = harness
            .invoke("alice", vec![Call::string("hit"), Call::string("hit")])
            .await
            .unwrap();
        assert_eq!(egress(&effects), ["alice: count=1", "alice: count=2"]);
        assert_eq!(effects.delayed.len(), 1, "only the first hit schedules");
        let reminder = &effects.delayed[0];
        assert_eq!(reminder.delay, REMIND_AFTER);
        assert_eq!(reminder.token.as_deref(), Some("remind-alice"));
        assert_eq!(
            reminder.message.target(),
            &eddy_sdk::Address::new(REMINDER, "alice").unwrap()
        );
        assert_eq!(reminder.message.value(&StringType).unwrap(), "remind");
        assert_eq!(harness.state("alice", &COUNT).unwrap(), Some(2));
        assert_eq!(harness.state("alice", &REMINDED).unwrap(), None);

        let effects = harness
            .invoke("alice", vec![Call::string("hit")])
            .await
            .unwrap();
        assert!(effects.delayed.is_empty());
        assert_eq!(egress(&effects), ["alice: count=3"]);
    }

    #[tokio::test]
    async fn the_reminder_marks_the_address_and_reports_the_count() {
        let mut harness = Harness::new(&functions(), REMINDER).unwrap();
        harness.set_state("bob", &COUNT, &5).unwrap();
        let effects = harness
            .invoke("bob", vec![Call::string("remind")])
            .await
            .unwrap();
        assert_eq!(egress(&effects), ["bob: reminder count=5"]);
        assert_eq!(effects.written, ["reminded"]);
        assert_eq!(harness.state("bob", &REMINDED).unwrap(), Some(true));
    }

    #[tokio::test]
    async fn anything_else_fails_the_invocation_and_changes_nothing() {
        let mut harness = Harness::new(&functions(), REMINDER).unwrap();
        let error = harness
            .invoke("carol", vec![Call::string("hit"), Call::string("oops")])
            .await
            .unwrap_err();
        assert!(error.to_string().contains("got \"oops\""), "{error}");
        assert_eq!(harness.state("carol", &COUNT).unwrap(), None);
        let error = harness
            .invoke("carol", vec![Call::new(&eddy_sdk::LongType, &1).unwrap()])
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("expected a value of type io.statefun.types/string"),
            "{error}"
        );
    }

    #[test]
    fn the_sample_serves_one_function_type() {
        assert_eq!(functions().typenames(), [REMINDER]);
    }
}
