import ArgumentParser
import Foundation
import MaxSim
import TesseraPlatform

/// `tessera demo kernel`: a short tour of the MaxSim kernels on synthetic token vectors.
struct KernelDemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "Scores a synthetic query against synthetic documents and explains the best match."
    )

    func run() throws {
        let dimension = 128
        var random = SplitMix64(seed: 2026)
        let kernel = MaxSimKernel()
        print("MaxSim kernels: \(kernel.instructionSet) variant, \(kernel.threadCount) threads")
        print("supported here: \(InstructionSet.supported.map(\.rawValue).joined(separator: ", "))\n")

        // 5,000 documents of 60…240 unit token vectors; document 4,242 gets noisy copies of the query's tokens,
        // spread evenly through it.
        let documentCount = 5_000
        let query = unitRows(32, dimension: dimension, random: &random)
        var documents = (0..<documentCount).map { _ in
            unitRows(random.int(in: 60...240), dimension: dimension, random: &random)
        }
        let planted = 4_242
        for token in 0..<32 {
            let position = token * (documents[planted].count / dimension / 32)
            let noise = unitRows(1, dimension: dimension, random: &random)
            for k in 0..<dimension {
                documents[planted][position * dimension + k] = query[token * dimension + k] + 0.3 * noise[k]
            }
        }
        let packed = try Multivectors(float32: documents, dimension: dimension)
        let queryVector = try Multivector(query, dimension: dimension)
        print("\(documentCount) documents, \(packed.tokenCount) tokens of dimension \(dimension), query of 32 tokens")

        let start = DispatchTime.now().uptimeNanoseconds
        let top = try kernel.topK(5, query: queryVector, documents: packed)
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let flop = 2.0 * 32 * Double(packed.tokenCount) * Double(dimension)
        print(String(format: "top-5 in %.1f ms (%.1f GFLOP/s):", milliseconds, flop / milliseconds / 1e6))
        for (rank, hit) in top.enumerated() {
            print(String(format: "  %d. document %5d  score %.4f", rank + 1, hit.index, hit.score))
        }

        let best = top[0].index
        let explained = try kernel.scores(
            query: queryVector,
            documents: try Multivectors([packed.item(best)], dimension: dimension),
            withArgmax: true
        )
        print("\nwhy document \(best) ranks first (query token → matched document token):")
        let matches = Array(explained.matches![0])
        let spacing = packed.item(best).tokenCount / 32
        for token in 0..<8 {
            let planted = best == planted ? " (planted at \(token * spacing))" : ""
            print("  query token \(token) → document token \(matches[token])\(planted)")
        }
        print("  …")

        let elementScores = try [TokenElementType.float16, .bfloat16, .int8].map { type in
            (
                type,
                try kernel.topK(
                    1,
                    query: queryVector,
                    documents: Multivectors(float32: documents, dimension: dimension, elementType: type)
                )
            )
        }
        print("\nthe same search over compressed storage:")
        for (type, hit) in elementScores {
            print(String(format: "  %-8@ best document %d, score %.4f", type.rawValue, hit[0].index, hit[0].score))
        }
        let oneThread = try MaxSimKernel(threadCount: 1).scores(query: queryVector, documents: packed).scores
        let allThreads = try kernel.scores(query: queryVector, documents: packed).scores
        let identical = oneThread.map(\.bitPattern) == allThreads.map(\.bitPattern)
        print("\nscores with 1 thread and \(kernel.threadCount) threads bit-identical: \(identical)")
        print("\nnext: `make test` runs the test suite; `make bench-kernel` times the kernels against OpenBLAS.")
    }

    private func unitRows(_ count: Int, dimension: Int, random: inout SplitMix64) -> [Float] {
        var values = random.signedUnits(count * dimension)
        for row in 0..<count {
            var norm: Float = 0
            for k in 0..<dimension { norm += values[row * dimension + k] * values[row * dimension + k] }
            let scale = 1 / norm.squareRoot()
            for k in 0..<dimension { values[row * dimension + k] *= scale }
        }
        return values
    }
}
