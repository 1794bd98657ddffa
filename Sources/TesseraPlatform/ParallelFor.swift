import Dispatch
import Synchronization

/// Running independent tasks on several threads at once.
///
/// Every entry point runs synchronously: it returns when every task has run. Tasks are claimed one at a time
/// from a shared atomic counter, in increasing order, so that a slow task never holds up tasks queued behind it
/// on one thread (dynamic scheduling). With one worker, or at most one task, the tasks run in order on the
/// calling thread and no thread is started.
public enum ParallelFor {
    /// Runs `body(task)` for every task in `0..<taskCount`, each once, on up to `workerCount` threads.
    /// - Parameters:
    ///   - taskCount: How many tasks.
    ///   - workerCount: The most threads to use (at least one is used).
    ///   - body: The task; called concurrently from several threads.
    /// - Complexity: One relaxed atomic increment per task, on top of `body`.
    public static func run(taskCount: Int, workerCount: Int, _ body: @Sendable (_ task: Int) -> Void) {
        runChunked(taskCount: taskCount, workerCount: workerCount) { task, _ in body(task) }
    }

    /// Runs `body(task, worker)` for every task in `0..<taskCount`, each once, on up to `workerCount` threads;
    /// `worker` in `0..<min(workerCount, taskCount)` identifies the calling thread's slot, so that a task can use
    /// that worker's scratch buffers without locking.
    /// - Parameters:
    ///   - taskCount: How many tasks (chunks of work).
    ///   - workerCount: The most threads to use (at least one is used).
    ///   - body: The task; called concurrently from several threads, never twice at once with the same `worker`.
    public static func runChunked(
        taskCount: Int,
        workerCount: Int,
        _ body: @Sendable (_ task: Int, _ worker: Int) -> Void
    ) {
        let workers = min(workerCount, taskCount)
        if workers <= 1 {
            for task in 0..<taskCount { body(task, 0) }
            return
        }
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            while true {
                // The counter grows by at most `workers` past `taskCount`, far from overflow.
                let task = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if task >= taskCount { break }
                body(task, worker)
            }
        }
    }

    /// Runs `body(worker)` once for each worker in `0..<workerCount`, each on its own thread: for work that a
    /// caller splits among a fixed number of workers itself, so that which worker does what never depends on
    /// timing (a reduction that must give the same bits on every run).
    /// - Parameters:
    ///   - workerCount: How many workers; one or fewer runs `body(0)` on the calling thread.
    ///   - body: The worker; called concurrently from several threads.
    public static func eachWorker(workerCount: Int, _ body: @Sendable (_ worker: Int) -> Void) {
        if workerCount <= 1 {
            body(0)
            return
        }
        DispatchQueue.concurrentPerform(iterations: workerCount, execute: body)
    }
}
