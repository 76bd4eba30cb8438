//! Integration tests: every behaviour over real HTTP against an emulator started on port 0.
//! One binary (`it`) so it links once.

mod admin;
mod collections;
mod crud;
mod faults;
mod helpers;
mod limits_and_auth;
mod oauth;
mod persistence;
mod query;
mod seeds;
mod simple_salesforce;
mod upsert;
