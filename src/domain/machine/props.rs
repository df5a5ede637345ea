//! Property tests of `transition` (proptest, 256 sequences unless PROPTEST_CASES): random
//! event sequences from a new incident, with the path kept as the worker and the API keep it,
//! never panic and never reach a state the runbook forbids.

use proptest::prelude::*;
use proptest::sample::select;

use super::*;
use IncidentState::*;

fn arb_reason() -> impl Strategy<Value = Reason> {
    prop_oneof![
        Just(Reason::Reenabled),
        Just(Reason::AccountKey),
        Just(Reason::StsKey),
        Just(Reason::OwnerUnknown),
        Just(Reason::PolicyLimit),
        Just(Reason::SecondKey),
        Just(Reason::AttackerArtefacts),
        Just(Reason::ProtectedIdentity),
        select(Step::ALL.to_vec()).prop_map(Reason::StepFailed),
        select(Step::ALL.to_vec()).prop_map(Reason::ApprovalTimedOut),
        select(Step::ALL.to_vec()).prop_map(Reason::UnknownAccount),
    ]
}

fn arb_state() -> impl Strategy<Value = IncidentState> {
    prop_oneof![
        select(Step::ALL.to_vec()).prop_map(Active),
        arb_reason().prop_map(NeedsAttention),
        Just(Resolved),
        Just(Cancelled),
    ]
}

/// Any event. `StepDone` comes often, so that sequences get far along a path.
fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        2 => select(Path::ALL.to_vec()).prop_map(Event::Triaged),
        8 => select(Path::ALL.to_vec()).prop_map(Event::StepDone),
        2 => arb_reason().prop_map(Event::Halted),
        1 => Just(Event::Retry),
        1 => Just(Event::ConfirmCutover),
        1 => Just(Event::SetRotation),
        1 => Just(Event::ClearRotation),
        1 => Just(Event::Reenable),
        1 => Just(Event::Approve),
        1 => Just(Event::ApprovalExpired),
        1 => Just(Event::Cancel),
        1 => Just(Event::Undone),
        1 => Just(Event::Retriage),
    ]
}

/// The state reads back from what the store keeps of it: its name, reason and step to resume.
fn round_trips(state: IncidentState) -> bool {
    let (reason, resume) = match state {
        NeedsAttention(reason) => (
            Some(reason.as_str()),
            reason.resume_step().map(Step::as_str),
        ),
        _ => (None, None),
    };
    IncidentState::NAMES.contains(&state.as_str())
        && IncidentState::parse(state.as_str(), reason, resume) == Some(state)
}

fn is_cancel_state(state: IncidentState) -> bool {
    matches!(
        state,
        Active(Step::Cancelling)
            | NeedsAttention(Reason::StepFailed(Step::Cancelling))
            | NeedsAttention(Reason::ApprovalTimedOut(Step::Cancelling))
            | NeedsAttention(Reason::UnknownAccount(Step::Cancelling))
            // Self-protection stops any step, undoing included, that would touch a protected
            // identity: a person decides, and may cancel again.
            | NeedsAttention(Reason::ProtectedIdentity)
            | Cancelled
    )
}

/// An incident as the worker and the API drive it: `StepDone` carries the path triage chose,
/// `set-rotation` with a sink makes it rotatable, without one (allowed only for a rotatable
/// key) leaves the key to a person, and a failed step reports itself.
struct Incident {
    state: IncidentState,
    path: Option<Path>,
    /// A disable step finished and the key was not re-enabled since.
    disabled: bool,
    cancelled: bool,
}

impl Incident {
    /// The event as the worker or the API would send it now, or `None` if the API refuses it.
    fn shape(&self, event: Event) -> Option<Event> {
        Some(match event {
            Event::StepDone(any) => Event::StepDone(self.path.unwrap_or(any)),
            Event::Halted(Reason::StepFailed(_)) => match self.state {
                Active(step) => Event::Halted(Reason::StepFailed(step)),
                _ => event,
            },
            Event::Halted(Reason::UnknownAccount(_)) => match self.state {
                Active(step) => Event::Halted(Reason::UnknownAccount(step)),
                _ => event,
            },
            Event::ClearRotation if self.path != Some(Path::RamKeyRotatable) => return None,
            other => other,
        })
    }

    fn apply(&mut self, event: Event) -> Result<(), TestCaseError> {
        let Some(event) = self.shape(event) else {
            return Ok(());
        };
        let from = self.state;
        let Ok(to) = transition(from, event) else {
            return Ok(());
        };
        prop_assert!(from.is_open(), "{from} accepted {event:?}");
        prop_assert!(round_trips(to), "{to:?} does not read back");
        // What the event tells about the key and the path, before judging where it led.
        match (from, event) {
            (Active(Step::DisableKey | Step::DisableOldKey), Event::StepDone(_)) => {
                self.disabled = true
            }
            (_, Event::Triaged(path)) => self.path = Some(path),
            (_, Event::SetRotation) => self.path = Some(Path::RamKeyRotatable),
            (_, Event::ClearRotation) => self.path = Some(Path::RamKeyInUse),
            (_, Event::Cancel) => self.cancelled = true,
            _ => {}
        }
        if to == Active(Step::DeleteKey) && from != to {
            prop_assert!(
                self.disabled,
                "{from} -> delete_key before the key was disabled"
            );
        }
        if to == Resolved {
            prop_assert_eq!(
                from,
                Active(Step::DeleteKey),
                "resolved without deleting the key"
            );
        }
        if to == Cancelled {
            prop_assert_eq!((from, event), (Active(Step::Cancelling), Event::Undone));
        }
        if to == Active(Step::Rotate) {
            prop_assert_eq!(
                self.path,
                Some(Path::RamKeyRotatable),
                "rotating without a sink"
            );
        }
        if self.cancelled {
            prop_assert!(is_cancel_state(to), "{to} after a cancel");
        }
        if to == Active(Step::Reenable) {
            self.disabled = false;
        }
        self.state = to;
        Ok(())
    }
}

proptest! {
    #[test]
    fn no_event_panics_or_leaves_a_state_that_cannot_be_stored(
        state in arb_state(),
        events in prop::collection::vec(arb_event(), 0..64),
    ) {
        let mut state = state;
        for event in events {
            match transition(state, event) {
                Ok(to) => {
                    prop_assert!(state.is_open(), "{state} accepted {event:?}");
                    prop_assert!(round_trips(to), "{to:?} does not read back");
                    state = to;
                }
                Err(illegal) => prop_assert_eq!(illegal, IllegalTransition { state, event }),
            }
        }
    }

    #[test]
    fn incidents_driven_as_the_worker_and_api_drive_them_keep_the_runbook(
        events in prop::collection::vec(arb_event(), 0..96),
    ) {
        let mut incident = Incident {
            state: Active(Step::Triage),
            path: None,
            disabled: false,
            cancelled: false,
        };
        for event in events {
            incident.apply(event)?;
        }
    }
}
