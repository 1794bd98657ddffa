import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization
public import Tessera

/// What the background optimiser is doing, per collection, for the collection info's `status`.
public final class OptimizerMonitor: Sendable {
    private struct State {
        var running: Set<String> = []
        var errors: [String: String] = [:]
    }
    private let state = Mutex(State())

    /// Creates an idle monitor.
    public init() {}

    func begin(_ name: String) { state.withLock { _ = $0.running.insert(name) } }

    func end(_ name: String, error: String?) {
        state.withLock { state in
            state.running.remove(name)
            state.errors[name] = error
        }
    }

    /// Qdrant's `status` of a collection and its last optimisation error: `yellow` while the optimiser works on
    /// it, `red` after a failed pass, `grey` when work is pending but not started, `green` otherwise.
    /// - Parameters:
    ///   - name: The collection.
    ///   - store: Its store.
    /// - Returns: The status word and the error, if any.
    public func status(of name: String, store: CollectionStore) -> (status: String, error: String?) {
        let (running, error) = state.withLock { ($0.running.contains(name), $0.errors[name]) }
        if running { return ("yellow", error) }
        if let error { return ("red", error) }
        let pending = (try? store.optimizerSettings()).map { store.needsOptimization(settings: $0) } ?? false
        return (pending ? "grey" : "green", nil)
    }
}

/// The optimiser of `tessera serve`: every `interval`, each open collection that needs it gets one
/// ``CollectionStore/optimize(settings:force:buildIndexes:)`` pass on a thread of its own pool (seal, merge,
/// vacuum, build the derived indexes), one collection at a time. Reads and writes go on meanwhile. A graceful
/// shutdown waits for the pass in progress (each pass commits its steps one by one, so a kill loses none).
struct BackgroundOptimizer: Service {
    let registry: CollectionRegistry
    let interval: Duration
    let logger: Logger

    /// One thread: passes run one at a time and never take a request's thread.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    func run() async throws {
        let stopping = StopFlag()
        await withGracefulShutdownHandler {
            while !stopping.isSet, !Task.isCancelled {
                await pass(stopping)
                // Sleep in short steps, so that a shutdown does not wait out the interval.
                let wake = ContinuousClock.now + interval
                while !stopping.isSet, !Task.isCancelled, ContinuousClock.now < wake {
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
        } onGracefulShutdown: {
            stopping.set()
        }
    }

    /// One look at every open collection.
    private func pass(_ stopping: StopFlag) async {
        for name in registry.names() {
            guard !stopping.isSet, let store = try? registry.store(name) else { continue }
            guard let settings = try? store.optimizerSettings(), store.needsOptimization(settings: settings) else {
                continue
            }
            registry.optimizer.begin(name)
            let start = ContinuousClock.now
            do {
                let report = try await Self.pool.runIfActive { try store.optimize(settings: settings) }
                registry.optimizer.end(name, error: nil)
                logger.info(
                    "optimized",
                    metadata: [
                        "collection": "\(name)", "sealed": "\(report.sealedSegments)", "merges": "\(report.merges)",
                        "indexes": "\(report.builtIndexes.joined(separator: ","))",
                        "seconds": "\((ContinuousClock.now - start) / .seconds(1))",
                    ]
                )
            } catch {
                registry.optimizer.end(name, error: "\(error)")
                logger.error("optimization failed", metadata: ["collection": "\(name)", "error": "\(error)"])
            }
        }
    }
}

/// Set once, on shutdown.
private final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}
