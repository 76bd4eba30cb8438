//! Braze-flavoured Liquid.
