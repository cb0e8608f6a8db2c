//! Defragmentation (placeholder until implemented below).

use super::error::BlobError;
use super::BlobOptions;

/// Finish or discard a defrag interrupted by a crash.
pub fn finish_interrupted(_opts: &BlobOptions) -> Result<(), BlobError> {
    Ok(())
}
