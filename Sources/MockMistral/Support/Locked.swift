import NIOConcurrencyHelpers

/// The mock's shared state is touched by every request on every event loop; a plain lock with tiny
/// critical sections is cheaper than an actor hop and keeps the public API synchronous (tests can
/// read the request log without `await`).
typealias Locked<Value> = NIOLockedValueBox<Value>
