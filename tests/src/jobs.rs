//! Leaving no background job behind after a test.

use std::time::Duration;

use cmux_core::jobs::{Jobs, ReadLimit};
use cmux_core::RemotePath;

/// Kills every job of the workspace that still runs and removes the workspace's
/// directory of jobs on the host (`.../cmux/jobs/<key>`), so a test leaves neither
/// processes nor files in the user's cache directory.
pub async fn forget_jobs(jobs: &Jobs) {
    let listed = match jobs.list().await {
        Ok(listed) => listed,
        Err(e) => panic!("listing jobs to clean up: {e}"),
    };
    let mut dir = None;
    for job in listed {
        if job.state.is_running() {
            let _ = jobs.kill(&job.id).await;
        }
        if let Ok(read) = jobs
            .read(&job.id, Duration::ZERO, ReadLimit::pages(0), None)
            .await
        {
            dir = RemotePath::new(read.output_path)
                .ok()
                .and_then(|out| out.parent())
                .and_then(|job_dir| job_dir.parent());
        }
    }
    if let Some(dir) = dir {
        assert!(
            dir.as_str().contains("/cmux/jobs/") && dir.file_name() == Some(jobs.key()),
            "{dir} is not this workspace's jobs directory"
        );
        let _ = jobs.runtime().remove(&dir, true).await;
    }
}
