//! `mdm reindex`: every golden record's index entries and claims rebuilt from its members'
//! source records (`Hub::reindex_golden`), page by page, with a checkpoint in the table after
//! each page: a run stopped anywhere goes on from its last page when started again with the
//! same run id, and running it again changes nothing.

use crate::dynamo::{DynamoStore, JobState};
use mdm_core::hub::Reindexed;
use mdm_core::{Hub, HubError};
use tracing::{info, warn};

const JOB: &str = "reindex";

/// Options of one run.
#[derive(Debug, Clone)]
pub struct ReindexJob {
    /// Names the run's checkpoint; the same id resumes it.
    pub run: String,
    /// Write every golden record again (its stored layout follows the adapter's current rules).
    pub rewrite: bool,
    /// Golden records a page (one `Scan` call).
    pub page: usize,
    /// Stop after this many pages (a resumable partial run); `None` runs to the end.
    pub max_pages: Option<usize>,
}

/// Runs (or resumes) a reindex; returns the checkpoint as it is at the end.
pub async fn run(hub: &Hub<DynamoStore>, job: &ReindexJob) -> Result<JobState, HubError> {
    let store = hub.store();
    let mut state = store.job_state(JOB, &job.run).await?;
    if state.done {
        info!(run = %job.run, "reindex run already complete");
        return Ok(state);
    }
    let mut pages = 0;
    loop {
        if job.max_pages.is_some_and(|m| pages >= m) {
            return Ok(state);
        }
        let (goldens, next) = store.golden_page(state.cursor.as_ref(), job.page).await?;
        for (entity, id) in &goldens {
            let counter = match hub.reindex_golden(entity, id, job.rewrite).await {
                Ok(Reindexed::Rebuilt) => "rebuilt",
                Ok(Reindexed::Current) => "current",
                Ok(Reindexed::Skipped) | Err(HubError::UnknownEntity(_)) => "skipped",
                // A record busy with other writes (or a store error) fails alone: counted, and
                // a run with a new id takes it again.
                Err(e) if e.is_retryable() => {
                    warn!(golden_id = %id, error = %e, "reindex of a golden record failed");
                    "failed"
                }
                Err(e) => return Err(e),
            };
            *state.counts.entry(counter.to_owned()).or_default() += 1;
        }
        pages += 1;
        state.done = next.is_none();
        state.cursor = next;
        store.save_job_state(JOB, &job.run, &state).await?;
        info!(run = %job.run, pages, golden = goldens.len(), done = state.done, "reindex page");
        if state.done {
            return Ok(state);
        }
    }
}
