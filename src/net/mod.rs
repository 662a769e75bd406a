//! Client networking: the listener accepts Kafka connections; each connection reads frames,
//! dispatches them through the route table and writes responses in request order.

pub mod connection;
pub mod listener;
