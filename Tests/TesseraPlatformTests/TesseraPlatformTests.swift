import Foundation
import Synchronization
import TesseraPlatform
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fresh temporary directory, removed when `body` returns or throws.
private func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("tessera-platform-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

@Suite("AtomicFile")
struct AtomicFileTests {
    @Test("a write replaces the whole file and leaves no temporary")
    func replaces() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/file"
            try AtomicFile.write(Array("old".utf8), to: path)
            try AtomicFile.write(Array("new contents".utf8), to: path)
            #expect(try Syscalls.readWholeFile(path) == Array("new contents".utf8))
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(names == ["file"])
        }
    }

    @Test("a failed write leaves the old content and removes its temporary")
    func failureKeepsOld() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/file"
            try AtomicFile.write(Array("old".utf8), to: path)
            // A directory where the temporary would go makes the write fail before any rename.
            try FileManager.default.createDirectory(
                atPath: AtomicFile.temporaryPath(for: path),
                withIntermediateDirectories: false
            )
            #expect(throws: SystemCallError.self) { try AtomicFile.write(Array("new".utf8), to: path) }
            #expect(try Syscalls.readWholeFile(path) == Array("old".utf8))
        }
    }

    @Test("a temporary written by someone else is committed over the target")
    func commitsTemporary() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/graph"
            try AtomicFile.write(Array("old".utf8), to: path)
            let temporary = AtomicFile.temporaryPath(for: path)
            let descriptor = try Syscalls.openForWriting(temporary, truncate: true)
            try Syscalls.writeAll(descriptor, Array("fresh".utf8), path: temporary)
            Syscalls.close(descriptor)
            try AtomicFile.commit(temporaryPath: temporary, to: path)
            #expect(try Syscalls.readWholeFile(path) == Array("fresh".utf8))
            #expect(!FileManager.default.fileExists(atPath: temporary))
        }
    }

    @Test("a commit of a missing temporary fails and leaves the target")
    func commitMissing() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/graph"
            try AtomicFile.write(Array("old".utf8), to: path)
            #expect(throws: SystemCallError.self) {
                try AtomicFile.commit(temporaryPath: path + ".absent", to: path)
            }
            #expect(try Syscalls.readWholeFile(path) == Array("old".utf8))
        }
    }
}

@Suite("Syscalls")
struct SyscallsTests {
    @Test("an interrupted call is retried until it completes", arguments: [0, 1, 7])
    func retriesInterrupted(interruptions: Int) {
        var calls = 0
        let result = Syscalls.retryingInterrupted { () -> Int in
            calls += 1
            if calls <= interruptions {
                errno = EINTR
                return -1
            }
            return 42
        }
        #expect(result == 42)
        #expect(calls == interruptions + 1)
    }

    @Test("another failure is returned at once")
    func otherFailure() {
        var calls = 0
        let result = Syscalls.retryingInterrupted { () -> Int32 in
            calls += 1
            errno = EIO
            return -1
        }
        #expect(result == -1)
        #expect(calls == 1)
    }

    @Test("a whole file is read across many chunks", arguments: [0, 1, 65_535, 65_536, 200_001])
    func readsWholeFile(byteCount: Int) throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/data"
            var random = SplitMix64(seed: UInt64(byteCount))
            let bytes = (0..<byteCount).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            try AtomicFile.write(bytes, to: path)
            #expect(try Syscalls.readWholeFile(path) == bytes)
        }
    }

    @Test("a read interrupted by signals still returns every byte")
    func readsUnderSignals() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/data"
            let bytes = [UInt8](repeating: 7, count: 4 << 20)
            try AtomicFile.write(bytes, to: path)
            // SIGURG is ignored by default: delivering it only interrupts system calls in progress.
            let target = pthread_self()
            let stop = Atomic<Bool>(false)
            let sender = Thread {
                while !stop.load(ordering: .relaxed) {
                    pthread_kill(target, SIGURG)
                    usleep(50)
                }
            }
            sender.start()
            defer { stop.store(true, ordering: .relaxed) }
            for _ in 0..<8 { #expect(try Syscalls.readWholeFile(path) == bytes) }
        }
    }

    @Test("a missing file is reported with its path and errno text")
    func missingFile() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/absent"
            do throws(SystemCallError) {
                _ = try Syscalls.readWholeFile(path)
                Issue.record("no error")
            } catch {
                #expect(error.isMissingFile)
                #expect(error.path == path)
                #expect(error.description.contains(path))
                #expect(error.description.contains(String(cString: strerror(ENOENT))))
            }
        }
    }
}

@Suite("MappedFile")
struct MappedFileTests {
    @Test("a mapping holds the file's bytes", arguments: [0, 1, 4096, 10_000])
    func maps(byteCount: Int) throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/file"
            let bytes = (0..<byteCount).map { UInt8(truncatingIfNeeded: $0 * 31) }
            try AtomicFile.write(bytes, to: path)
            let file = try MappedFile(path: path)
            #expect(file.byteCount == byteCount)
            #expect(file.path == path)
            #expect(file.withUnsafeBytes { Array($0) } == bytes)
            file.releaseResidentPages()
            #expect(file.withUnsafeBytes { Array($0) } == bytes)
        }
    }

    @Test("errors name the path and the reason")
    func errorsNamePath() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/missing.tidx"
            do throws(SystemCallError) {
                _ = try MappedFile(path: path)
                Issue.record("no error")
            } catch {
                #expect(error.call == "open")
                #expect(error.path == path)
                #expect(error.description == "open failed on \(path): \(String(cString: strerror(ENOENT)))")
            }
            do throws(SystemCallError) {
                _ = try MappedFile(path: directory)
                Issue.record("no error")
            } catch {
                #expect(error.path == directory)
                #expect(error.description.contains(directory))
            }
        }
    }
}

@Suite("ParallelFor")
struct ParallelForTests {
    @Test(
        "every task runs exactly once",
        arguments: [(0, 1), (1, 1), (7, 2), (8, 3), (9, 8), (128, 2), (768, 16)]
    )
    func visitsEveryTaskOnce(taskCount: Int, workerCount: Int) {
        let visits = Mutex([Int](repeating: 0, count: taskCount))
        let seenWorkers = Mutex<Set<Int>>([])
        ParallelFor.runChunked(taskCount: taskCount, workerCount: workerCount) { task, worker in
            visits.withLock { $0[task] += 1 }
            seenWorkers.withLock { _ = $0.insert(worker) }
        }
        #expect(visits.withLock { $0 } == [Int](repeating: 1, count: taskCount))
        let workers = seenWorkers.withLock { $0 }
        #expect(workers.allSatisfy { $0 >= 0 && $0 < max(1, min(workerCount, taskCount)) })
    }

    @Test("run passes each task index once")
    func runVisits() {
        let sum = Atomic<Int>(0)
        ParallelFor.run(taskCount: 1000, workerCount: 4) { task in sum.wrappingAdd(task, ordering: .relaxed) }
        #expect(sum.load(ordering: .relaxed) == 999 * 1000 / 2)
    }

    @Test("each worker runs once", arguments: [0, 1, 2, 5])
    func eachWorker(workerCount: Int) {
        let seen = Mutex<[Int]>([])
        ParallelFor.eachWorker(workerCount: workerCount) { worker in seen.withLock { $0.append(worker) } }
        #expect(seen.withLock { $0.sorted() } == Array(0..<max(1, workerCount)))
    }
}

@Suite("GEMM and SplitMix64")
struct ComputationTests {
    @Test("multiplyTransposed matches a plain loop", arguments: [(1, 1, 1), (3, 5, 7), (8, 9, 16)])
    func multiplies(rows: Int, columns: Int, depth: Int) {
        var random = SplitMix64(seed: 3)
        let a = (0..<(rows * depth)).map { _ in Float(random.next() % 17) - 8 }
        let b = (0..<(columns * depth)).map { _ in Float(random.next() % 17) - 8 }
        var c = [Float](repeating: 0, count: rows * columns)
        GEMM.multiplyTransposed(a, b, rows: rows, columns: columns, depth: depth, into: &c)
        for row in 0..<rows {
            for column in 0..<columns {
                var sum: Float = 0
                for k in 0..<depth { sum += a[row * depth + k] * b[column * depth + k] }
                #expect(c[row * columns + column] == sum)
            }
        }
        var gram = [Float](repeating: 0, count: depth * depth)
        GEMM.gram(a, rows: rows, columns: depth, into: &gram)
        for i in 0..<depth {
            for j in 0..<depth {
                var sum: Float = 0
                for row in 0..<rows { sum += a[row * depth + i] * a[row * depth + j] }
                #expect(gram[i * depth + j] == sum)
            }
        }
    }

    @Test("SplitMix64 gives the published sequence for seed 0")
    func splitMix() {
        var random = SplitMix64(seed: 0)
        #expect(random.next() == 0xE220_A839_7B1D_CDAF)
        #expect(random.next() == 0x6E78_9E6A_A1B9_65F4)
    }
}
