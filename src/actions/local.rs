//! Actions that need no exchange: manual steps a person attests to, and writing the
//! report.
use std::sync::Arc;

use super::revoke::Verdict;
use super::{
    Action, ActionError, ActionSpec, ArgType, Attestation, BoxFuture, InputSpec, Kind, Outcome,
    OutputSpec, StepContext,
};
use crate::operator::Level;
use crate::secret::Role;

pub fn all() -> Vec<Arc<dyn Action>> {
    vec![Arc::new(Manual), Arc::new(ReportWrite)]
}

/// What the simulator carries out in a drill when a manual step is confirmed.
pub const DRILL_EFFECTS: &[&str] = &["none", "delete-leaked-key"];

/// What respond checks after a person says the step is done.
pub const CHECKS: &[&str] = &["none", "key-deleted"];

static MANUAL: ActionSpec = ActionSpec {
    name: "manual",
    description:
        "Something only a person can do: shows instructions, then asks done / skip / abort",
    kind: Kind::Manual,
    inputs: &[
        InputSpec {
            name: "instructions",
            ty: ArgType::Text,
            required: true,
            default: None,
            description: "what to do, exactly; may use ${{ key.masked }}",
        },
        InputSpec {
            name: "drill",
            ty: ArgType::Choice(DRILL_EFFECTS),
            required: false,
            default: Some("none"),
            description: "in a drill, what the simulator does when the step is confirmed",
        },
        InputSpec {
            name: "check",
            ty: ArgType::Choice(CHECKS),
            required: false,
            default: Some("none"),
            description: "what to verify against the exchange when the person says done (key-deleted: probe the leaked key at once)",
        },
    ],
    outputs: &[],
};

pub struct Manual;

impl Action for Manual {
    fn spec(&self) -> &'static ActionSpec {
        &MANUAL
    }

    /// Called after the operator said "done" (or the drill autopilot did).
    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let check = ctx.args.text("check").unwrap_or("none");
            if check == "key-deleted"
                && ctx
                    .earlier_output("binance.cancel_open_orders", "cancelled")
                    .is_some()
            {
                super::orders::last_sweep(ctx).await?;
            }
            let effect = ctx.args.text("drill").unwrap_or("none");
            if ctx.run.drill && effect != "none" {
                let done = crate::engine::drill_effect(ctx, effect).await?;
                ctx.note(
                    Level::Info,
                    format!("drill: the simulator carried this out: {done}"),
                )?;
                return Ok(Outcome::ok(format!("done (drill: {done})")));
            }
            Ok(Outcome::ok("done"))
        })
    }

    fn attest<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Attestation, ActionError>> {
        Box::pin(async move {
            if ctx.args.text("check") != Some("key-deleted") {
                return Ok(Attestation::NotChecked);
            }
            let client = ctx.client(Role::Leaked)?;
            let answers = super::revoke::probe_round(&client).await;
            let verdict = super::revoke::verdict_of(&answers, &super::revoke::seen_at_triage(ctx));
            super::revoke::record_round(ctx, 0, &answers, verdict)?;
            let said: Vec<String> = answers
                .iter()
                .map(|(path, p)| match p.code() {
                    Some(c) => format!("{path} answered {c}"),
                    None => format!("{path} accepted it"),
                })
                .collect();
            let said = said.join(", ");
            Ok(match verdict {
                Verdict::Alive => Attestation::Contradicted(format!(
                    "Binance still accepts the key ({said}): it is NOT deleted, or a different key was"
                )),
                // Refused from here before the deletion too (an IP whitelist): only -2008
                // on an endpoint that refused it before can tell a deletion.
                Verdict::Rejected
                    if ctx.earlier_output("binance.key_permissions", "refused")
                        == Some(serde_json::Value::Bool(true)) =>
                {
                    Attestation::Inconclusive(format!(
                        "Binance refused the key from this machine before it was deleted too ({said}); only -2008 proves the deletion"
                    ))
                }
                Verdict::Dead | Verdict::Rejected => {
                    ctx.run.services.leaked_dead.store(true, std::sync::atomic::Ordering::SeqCst);
                    Attestation::Confirmed(format!("Binance refuses the key now ({said})"))
                }
                Verdict::Unknown => Attestation::Inconclusive(format!("the probe proved nothing ({said})")),
            })
        })
    }
}

static REPORT_WRITE: ActionSpec = ActionSpec {
    name: "report.write",
    description: "Render report.md, report.json and the evidence CSVs from the journal now (the engine also does this whenever a run stops)",
    kind: Kind::Local,
    inputs: &[],
    outputs: &[OutputSpec { name: "path", description: "the report.md written" }],
};

pub struct ReportWrite;

impl Action for ReportWrite {
    fn spec(&self) -> &'static ActionSpec {
        &REPORT_WRITE
    }

    fn run<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Outcome, ActionError>> {
        Box::pin(async move {
            let dir = ctx.run.incident_dir.clone();
            crate::report::render_dir(&dir).map_err(|e| ActionError::Failed(e.to_string()))?;
            let path = dir.join(crate::report::REPORT_MD);
            Ok(Outcome::ok(format!("report written to {}", path.display()))
                .with("path", path.display().to_string()))
        })
    }
}
