//! Salesforce emulator.
