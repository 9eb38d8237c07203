//! `infra:host/types`: shared records only; there is nothing to call.

use super::StoreState;
use super::infra::host::types::Host;

impl Host for StoreState {}
