import Foundation
import MaxSim
import Synchronization
import Tessera
import TesseraPlatform
import Testing

/// The token vectors of point `id` at `version`: every writer and the replay compute the same ones.
private func tokens(id: Int, version: Int) -> [[Float]] {
    var random = SplitMix64(seed: UInt64(id * 1000 + version))
    return (0..<(1 + id % 4)).map { _ in random.signedUnits(4) }
}

private let query: [[Float]] = [[0.4, -0.1, 0.7, 0.2], [-0.5, 0.3, 0.1, 0.6]]

private func maxSim(_ document: [[Float]]) -> Float {
    query.reduce(0) { sum, q in sum + document.map { d in zip(q, d).reduce(0) { $0 + $1.0 * $1.1 } }.max()! }
}

/// One writer's operations, in order: each round upserts its points at the round's version in batches of ten,
/// then deletes the ones whose id falls on the round.
private func operations(writer: Int, rounds: Int) -> [(upsert: [Point], delete: [PointID])] {
    let ids = (writer * 100)..<(writer * 100 + 60)
    var steps: [(upsert: [Point], delete: [PointID])] = []
    for round in 0..<rounds {
        for batch in stride(from: ids.lowerBound, to: ids.upperBound, by: 10) {
            let points = (batch..<(batch + 10)).map { id in
                Point(
                    id: .integer(UInt64(id)),
                    payload: ["version": .integer(Int64(round))],
                    vectors: ["tokens": .multivector(tokens(id: id, version: round))]
                )
            }
            steps.append((points, []))
        }
        steps.append(([], ids.filter { $0 % 5 == round }.map { .integer(UInt64($0)) }))
    }
    return steps
}

private func apply(_ step: (upsert: [Point], delete: [PointID]), to store: CollectionStore) throws {
    if !step.upsert.isEmpty { try store.upsert(step.upsert) }
    if !step.delete.isEmpty { _ = try store.delete(ids: step.delete) }
}

private func exactQuery() throws -> QueryRequest {
    QueryRequest(
        root: QueryNode(
            query: .multivector(try Multivector(query.flatMap { $0 }, dimension: 4)),
            using: "tokens",
            limit: 25,
            parameters: QueryParameters(exact: true)
        ),
        withPayload: true
    )
}

@Suite("Concurrent store")
struct ConcurrentStoreTests {
    @Test("writers, readers and the optimiser on separate threads: answers consistent, the end state a replay's")
    func writersAndReaders() throws {
        try withTemporaryDirectory { root in
            let configuration = CollectionConfiguration(fields: [multivectorField()])
            let store = try CollectionStore.create(at: root + "/concurrent", configuration: configuration)
            let rounds = 4
            let writers = 2
            let done = Atomic<Int>(0)
            let problems = Mutex<[String]>([])
            let answers = Atomic<Int>(0)
            let passes = Atomic<Int>(0)
            let settings = {
                var settings = OptimizerSettings()
                settings.defaultSegmentNumber = 3
                settings.vacuumMinVectorNumber = 4
                return settings
            }()
            DispatchQueue.concurrentPerform(iterations: writers + 3) { task in
                do {
                    if task < writers {
                        for step in operations(writer: task, rounds: rounds) { try apply(step, to: store) }
                        done.add(1, ordering: .releasing)
                        return
                    }
                    if task == writers + 2 {
                        // The optimiser: seals whatever the tail holds, merges down to three segments, vacuums.
                        repeat {
                            try store.optimize(settings: settings, force: true, buildIndexes: false)
                            passes.add(1, ordering: .relaxed)
                        } while done.load(ordering: .acquiring) < writers
                        return
                    }
                    // A reader: each answer must be sorted, without duplicates, and each score the MaxSim of the
                    // point's vectors at the version its payload names (no torn point, no stale score).
                    repeat {
                        let points = try store.query(try exactQuery()).points
                        answers.add(1, ordering: .relaxed)
                        let scores = points.map(\.score)
                        if scores != scores.sorted(by: >) { problems.withLock { $0.append("unsorted \(scores)") } }
                        if Set(points.map(\.id)).count != points.count {
                            problems.withLock { $0.append("duplicate ids") }
                        }
                        for point in points {
                            guard case .integer(let id) = point.id,
                                case .integer(let version)? = point.payload?["version"]
                            else { continue }
                            let expected = maxSim(tokens(id: Int(id), version: Int(version)))
                            if abs(expected - point.score) > 1e-4 * max(1, abs(expected)) {
                                problems.withLock { $0.append("point \(id) v\(version): \(point.score) ≠ \(expected)") }
                            }
                        }
                    } while done.load(ordering: .acquiring) < writers
                } catch {
                    problems.withLock { $0.append("\(error)") }
                }
            }
            #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0.prefix(5) })")
            #expect(answers.load(ordering: .relaxed) >= 2)
            #expect(passes.load(ordering: .relaxed) >= 1)
            #expect(store.segments().count >= 1)

            // The same operations, one writer after the other: the writers touch disjoint points, so every
            // interleaving ends in this state.
            let replay = try CollectionStore.create(at: root + "/serial", configuration: configuration)
            for writer in 0..<writers {
                for step in operations(writer: writer, rounds: rounds) { try apply(step, to: replay) }
            }
            let concurrent = try store.query(try exactQuery()).points
            let serial = try replay.query(try exactQuery()).points
            #expect(concurrent.map(\.id) == serial.map(\.id))
            #expect(concurrent.map(\.score) == serial.map(\.score))
            #expect(store.count() == replay.count())
            #expect(store.count() == writers * (60 - 12))
            // And after reopening, from what was committed.
            try store.close()
            let reopened = try CollectionStore.open(at: root + "/concurrent")
            let answer = try reopened.query(try exactQuery()).points
            #expect(answer.map(\.id) == serial.map(\.id))
            #expect(answer.map(\.score) == serial.map(\.score))
            #expect(reopened.count() == replay.count())
            try reopened.checkIntegrity()
        }
    }
}
