//! Leaving no background job behind after a test.

use cmux_core::jobs::Jobs;
use cmux_core::RemotePath;

/// Kills every job of the workspace that still runs and removes the workspace's
/// directory of jobs on the host (`.../cmux/jobs/<key>`, found from `output_path`, the
/// output file of any job of the workspace), so a test leaves neither processes nor
/// files in the user's cache directory.
pub async fn forget_jobs(jobs: &Jobs, output_path: &str) {
    if let Ok(listed) = jobs.list().await {
        for job in listed.iter().filter(|job| job.state.is_running()) {
            let _ = jobs.kill(&job.id).await;
        }
    }
    let dir = RemotePath::new(output_path)
        .ok()
        .and_then(|out| out.parent())
        .and_then(|job_dir| job_dir.parent());
    match dir {
        Some(dir)
            if dir.as_str().contains("/cmux/jobs/") && dir.file_name() == Some(jobs.key()) =>
        {
            let _ = jobs.runtime().remove(&dir, true).await;
        }
        _ => panic!("{output_path} is not the output of a job of this workspace"),
    }
}
