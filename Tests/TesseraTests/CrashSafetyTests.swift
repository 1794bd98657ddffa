import Foundation
import Tessera
import TesseraPlatform
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A copy of `ProbePoints` in `Sources/TesseraCrashProbe/ProbePoints.swift`: the content of each probe point is a
/// function of its id. Keep the two in step.
private enum ProbePoints {
    static let configuration = CollectionConfiguration(fields: [
        VectorField(name: "tokens", dimension: 8, kind: .multivector(comparator: .maxSim), elementType: .float32),
        VectorField(name: "summary", dimension: 4, kind: .dense(distance: .cosine), elementType: .float16),
    ])

    static func point(id: UInt64) -> Point {
        let tokenCount = 1 + Int(id % 5)
        let tokens = (0..<tokenCount).map { token in
            (0..<8).map { component in Float(sin(Double(id) * 0.37 + Double(token) * 1.3 + Double(component) * 0.11)) }
        }
        let summary = (0..<4).map { component in Float(cos(Double(id) * 0.21 + Double(component))) }
        return Point(
            id: .integer(id),
            payload: ["n": .integer(Int64(id)), "tag": .string("p\(id % 7)"), "even": .bool(id % 2 == 0)],
            vectors: ["tokens": .multivector(tokens), "summary": .dense(summary)]
        )
    }
}

/// Each record's payload and token vectors are those its id determines.
private func expectPayloadsAndTokens(_ records: [Record]) {
    for record in records {
        guard case .integer(let id) = record.id else { continue }
        let expected = ProbePoints.point(id: id)
        #expect(record.payload == expected.payload, "payload of \(id)")
        #expect(storedValues(record, "tokens") == expected.vectors["tokens"]!.flattened.values, "tokens of \(id)")
    }
}

@Suite("Crash safety")
struct CrashSafetyTests {
    @Test("points acknowledged before SIGKILL survive, intact, the collection opens cleanly, text and vectors agree")
    func killDuringIngest() throws {
        let probe = try #require(
            packageExecutable(named: "tessera-crash-probe", environment: "TESSERA_CRASH_PROBE"),
            "tessera-crash-probe not found next to the test bundle; build all products first (swift build --build-tests)"
        )
        var random = SplitMix64.printed("crash safety")
        try withCollectionPath { path in
            try CollectionStore.create(at: path, configuration: ProbePoints.configuration).close()
            var acknowledged: Set<UInt64> = []
            let started = ContinuousClock.now
            var kills = 0
            while kills < 24 && ContinuousClock.now - started < .seconds(40) {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: probe)
                let firstID = UInt64(kills) * 1_000_000
                process.arguments = [path, String(firstID), String(random.next())]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                // Wait for the first acknowledgement (the probe has opened the collection and is ingesting), then
                // kill it at a random moment of its ingest. A kill during startup is covered by the zero delay.
                let first = output.fileHandleForReading.availableData
                let delayMilliseconds = Int.random(in: 0...60, using: &random)
                Thread.sleep(forTimeInterval: Double(delayMilliseconds) / 1000)
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(
                    process.terminationReason == .uncaughtSignal,
                    "the probe exited by itself: status \(process.terminationStatus)"
                )
                kills += 1
                let text = String(decoding: first + output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                // Only whole lines count: a line cut by the kill was not fully written.
                var runAcknowledged = 0
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                    guard line.hasPrefix("ack "), let id = UInt64(line.dropFirst(4)) else {
                        Issue.record("unexpected probe output line: \(line)")
                        continue
                    }
                    acknowledged.insert(id)
                    runAcknowledged += 1
                }
                print("kill \(kills) after \(delayMilliseconds) ms: \(runAcknowledged) acknowledged in this run")

                let store = try CollectionStore.open(at: path, expecting: ProbePoints.configuration)
                try store.checkIntegrity()
                // Every point of this run, a sample of earlier ones, and all of them after the last kill.
                let isLast = kills >= 24 || ContinuousClock.now - started >= .seconds(40)
                let earlier = acknowledged.filter { $0 < firstID }
                let sample = isLast ? earlier : Set(earlier.shuffled(using: &random).prefix(200))
                let ids = acknowledged.filter { $0 >= firstID }.union(sample).sorted().map { PointID.integer($0) }
                let records = try store.get(ids: ids, withPayload: true, withVectors: true)
                #expect(records.count == ids.count, "acknowledged points missing after kill \(kills)")
                expectPayloadsAndTokens(records)
                for record in records {
                    guard case .integer(let id) = record.id else { continue }
                    let expected = ProbePoints.point(id: id)
                    let summary = storedValues(record, "summary")
                    let expectedSummary = expected.vectors["summary"]!.flattened.values
                    // A cosine field stores the unit vector.
                    let norm = expectedSummary.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
                    let unit = expectedSummary.map { $0 * (1 / norm) }
                    #expect(summary == unit.map { Float(Float16($0)) }, "summary of \(id)")
                }
                // The BM25 index (rebuilt from the stored payloads) agrees with the stored points: a text query for
                // a tag finds exactly the live points carrying it.
                let tag = "p\(kills % 7)"
                let byText = try store.query(
                    QueryRequest(
                        root: QueryNode(
                            query: .text(tag),
                            limit: 1_000_000,
                            parameters: QueryParameters(textFields: ["tag"])
                        ),
                        withPayload: false
                    )
                ).points.map(\.id)
                let byFilter = store.count(
                    filter: try Filter(json: #"{"must": [{"key": "tag", "match": {"value": "\#(tag)"}}]}"#)
                )
                #expect(Set(byText).count == byText.count)
                #expect(
                    byText.count == byFilter,
                    "BM25 finds \(byText.count) points tagged \(tag), the filter \(byFilter)"
                )
                // Unacknowledged points of a killed batch may or may not be there, but must be whole.
                #expect(store.scoringView().liveCount >= acknowledged.count)
                try store.close()
            }
            #expect(kills >= 20, "only \(kills) kills fitted in the time bound")
            #expect(acknowledged.count > 0, "the probe acknowledged nothing; is it working?")
            print("crash safety: \(kills) kills, \(acknowledged.count) acknowledged points verified")
        }
    }
}

extension CrashSafetyTests {
    @Test(
        "SIGKILL during seal, merge, vacuum and index builds: the collection opens cleanly with every acknowledged point"
    )
    func killDuringOptimizer() throws {
        let probe = try #require(
            packageExecutable(named: "tessera-crash-probe", environment: "TESSERA_CRASH_PROBE"),
            "tessera-crash-probe not found next to the test bundle; build all products first (swift build --build-tests)"
        )
        var random = SplitMix64.printed("crash safety of the optimiser")
        try withCollectionPath { path in
            try CollectionStore.create(at: path, configuration: ProbePoints.configuration).close()
            var acknowledged: Set<UInt64> = []
            var killsDuring: [String: Int] = [:]
            let started = ContinuousClock.now
            let timeBound = Duration.seconds(240)
            var run = 0
            func enough() -> Bool { ["seal", "merge", "index"].allSatisfy { killsDuring[$0, default: 0] >= 50 } }
            while !enough() && ContinuousClock.now - started < timeBound {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: probe)
                let firstID = UInt64(run + 1) * 1_000_000
                run += 1
                process.arguments = [
                    path, String(firstID), String(random.next()), ["seal", "merge", "index"][run % 3],
                ]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                let first = output.fileHandleForReading.availableData
                Thread.sleep(forTimeInterval: Double(Int.random(in: 0...80, using: &random)) / 1000)
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                #expect(process.terminationReason == .uncaughtSignal, "the probe exited: \(process.terminationStatus)")
                let text = String(decoding: first + output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                var operation = "ingest"
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                    if line.hasPrefix("ack "), let id = UInt64(line.dropFirst(4)) {
                        acknowledged.insert(id)
                        operation = "ingest"
                    } else if ["seal", "merge", "index"].contains(String(line)) {
                        operation = String(line)
                    } else if line == "idle" {
                        operation = "ingest"
                    }
                }
                killsDuring[operation, default: 0] += 1
                let store = try CollectionStore.open(at: path, expecting: ProbePoints.configuration)
                try store.checkIntegrity()
                try store.verifySegments()
                let isLast = enough() || ContinuousClock.now - started >= timeBound
                let earlier = acknowledged.filter { $0 < firstID }
                let sample = isLast ? earlier : Set(earlier.shuffled(using: &random).prefix(100))
                let ids = acknowledged.filter { $0 >= firstID }.union(sample).sorted().map { PointID.integer($0) }
                let records = try store.get(ids: ids, withPayload: true, withVectors: true)
                #expect(records.count == ids.count, "acknowledged points missing after run \(run) (\(operation))")
                expectPayloadsAndTokens(records)
                #expect(store.scoringView().liveCount >= acknowledged.count)
                try store.close()
            }
            print("crash safety of the optimiser: kills during \(killsDuring), \(acknowledged.count) points verified")
            #expect(killsDuring["seal", default: 0] >= 50, "\(killsDuring)")
            #expect(killsDuring["merge", default: 0] >= 50, "\(killsDuring)")
            #expect(killsDuring["index", default: 0] >= 50, "\(killsDuring)")
        }
    }
}
