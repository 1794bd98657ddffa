import ArgumentParser
import CBLAS
import Foundation
import MaxSim
import TesseraPlatform

/// `tessera bench kernel`: MaxSim kernel throughput against OpenBLAS sgemm on the same shapes.
struct BenchKernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "Times the MaxSim kernels on fixed shapes, next to OpenBLAS sgemm on the equivalent product.",
        discussion: """
            Workloads (dimension 128 unless named): W1 one 32-token query against 10,000 packed documents of \
            128…256 tokens; W2 16 × 32-token queries against 1,000 × 180-token documents, every pair; W3 one \
            32-token query against 1,000 × 1,024-token documents; W1-384 is W1 at dimension 384. Effective \
            GFLOP/s = 2 · Lq · ΣLd · dimension / time. Build with -c release.
            """
    )

    @Option(help: "Threads for the kernel and for OpenBLAS.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Timed repeats per measurement (after one warm-up run).")
    var repeats: Int = 7

    @Option(help: "Comma-separated workloads: W1, W2, W3, W1-384.")
    var workloads: String = "W1,W2,W3,W1-384"

    @Option(help: "Comma-separated document element types: f32, f16, bf16, int8.")
    var types: String = "f32,f16,bf16,int8"

    @Option(help: "Instruction set: scalar, avx2, avx512, neon (default: the best this CPU supports).")
    var isa: String?

    @Option(help: "Write each workload's data (raw little-endian float32 + JSON shapes) here for the peer script.")
    var export: String?

    @Flag(help: "Skip the sgemm 2048³ reference measurement.")
    var skipPeak = false

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let instructionSet = try isa.map { name in
            guard let value = InstructionSet(rawValue: name), value.isSupported else {
                throw CommandError("instruction set '\(name)' is unknown or not supported by this CPU")
            }
            return value
        }
        tsr_blas_set_thread_count(Int32(threads))
        let kernel = MaxSimKernel(threadCount: threads, instructionSet: instructionSet)
        let elementTypes = try types.split(separator: ",").map { name -> TokenElementType in
            switch name {
            case "f32": return .float32
            case "f16": return .float16
            case "bf16": return .bfloat16
            case "int8": return .int8
            default: throw CommandError("unknown type '\(name)'")
            }
        }
        var report = KernelBenchReport(
            machine: MachineDescription.current,
            threads: threads,
            instructionSet: kernel.instructionSet.rawValue,
            repeats: repeats
        )
        if !skipPeak {
            report.sgemmPeak = SgemmYardstick.peak(size: 2048, repeats: repeats)
            if !json {
                print(String(format: "sgemm 2048³: %.1f GFLOP/s (median of %d)", report.sgemmPeak!.gflops, repeats))
            }
        }
        for name in workloads.split(separator: ",").map(String.init) {
            guard let workload = KernelWorkload(name: name) else { throw CommandError("unknown workload '\(name)'") }
            let data = workload.generate()
            if let export { try data.export(to: export, name: name) }
            var row = KernelBenchRow(workload: name, flop: data.flopCount)
            row.sgemm = SgemmYardstick.time(data: data, repeats: repeats)
            for elementType in elementTypes {
                let timing = try data.time(kernel: kernel, elementType: elementType, repeats: repeats)
                row.kernel[elementType.rawValue] = timing
            }
            report.rows.append(row)
            if !json { row.printTable(peak: report.sgemmPeak) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        }
    }
}

/// Median and spread of repeated timings.
struct Timing: Codable {
    var seconds: [Double]
    var flop: Double

    var median: Double { seconds.sorted()[seconds.count / 2] }
    var minimum: Double { seconds.min() ?? 0 }
    var maximum: Double { seconds.max() ?? 0 }
    var gflops: Double { flop / median / 1e9 }

    enum CodingKeys: String, CodingKey { case seconds, flop, median, gflops }

    init(seconds: [Double], flop: Double) {
        self.seconds = seconds
        self.flop = flop
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        seconds = try container.decode([Double].self, forKey: .seconds)
        flop = try container.decode(Double.self, forKey: .flop)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(seconds, forKey: .seconds)
        try container.encode(flop, forKey: .flop)
        try container.encode(median, forKey: .median)
        try container.encode(gflops, forKey: .gflops)
    }

    /// Times `body` once to warm up, then `repeats` times.
    static func measure(flop: Double, repeats: Int, _ body: () throws -> Void) rethrows -> Timing {
        try body()
        var seconds: [Double] = []
        for _ in 0..<max(1, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return Timing(seconds: seconds, flop: flop)
    }
}

struct KernelBenchRow: Codable {
    var workload: String
    var flop: Double
    var sgemm: Timing?
    var kernel: [String: Timing] = [:]

    func printTable(peak: Timing?) {
        print("\n\(workload)  (\(String(format: "%.2f", flop / 1e9)) GFLOP per run)")
        print("  method          median ms   min..max ms        GFLOP/s  × sgemm  % sgemm 2048³")
        func line(_ name: String, _ timing: Timing) {
            let ratio = sgemm.map { String(format: "%6.2f", $0.median / timing.median) } ?? "     -"
            let peakShare = peak.map { String(format: "%6.1f%%", 100 * timing.gflops / $0.gflops) } ?? "      -"
            let text = String(
                format: "  %@ %10.2f  %8.2f..%-8.2f %9.1f   %@   %@",
                name.padding(toLength: 15, withPad: " ", startingAt: 0),
                timing.median * 1e3,
                timing.minimum * 1e3,
                timing.maximum * 1e3,
                timing.gflops,
                ratio,
                peakShare
            )
            print(text)
        }
        if let sgemm { line("sgemm", sgemm) }
        for key in ["float32", "float16", "bfloat16", "int8"] {
            if let timing = kernel[key] { line("maxsim " + key, timing) }
        }
    }
}

struct KernelBenchReport: Codable {
    var machine: String
    var threads: Int
    var instructionSet: String
    var repeats: Int
    var sgemmPeak: Timing?
    var rows: [KernelBenchRow] = []
}

/// A benchmark shape.
struct KernelWorkload {
    var queryCount: Int
    var queryTokens: Int
    var documentCount: Int
    var documentTokens: ClosedRange<Int>
    var dimension: Int
    /// Score every (query, document) pair with the all-pairs entry point.
    var allPairs: Bool

    init?(name: String) {
        switch name {
        case "W1": self.init(1, 32, 10_000, 128...256, 128, false)
        case "W1-384": self.init(1, 32, 10_000, 128...256, 384, false)
        case "W2": self.init(16, 32, 1_000, 180...180, 128, true)
        case "W3": self.init(1, 32, 1_000, 1_024...1_024, 128, false)
        default: return nil
        }
    }

    private init(_ q: Int, _ lq: Int, _ c: Int, _ ld: ClosedRange<Int>, _ dim: Int, _ allPairs: Bool) {
        queryCount = q
        queryTokens = lq
        documentCount = c
        documentTokens = ld
        dimension = dim
        self.allPairs = allPairs
    }

    func generate() -> KernelWorkloadData {
        var random = SplitMix64(seed: 0x7E55E8A)
        var offsets = [0]
        for _ in 0..<documentCount { offsets.append(offsets[offsets.count - 1] + random.int(in: documentTokens)) }
        let documents = normalizedRows(random.signedUnits(offsets[offsets.count - 1] * dimension), dimension)
        let queries = normalizedRows(random.signedUnits(queryCount * queryTokens * dimension), dimension)
        return KernelWorkloadData(workload: self, queries: queries, documents: documents, offsets: offsets)
    }

    private func normalizedRows(_ values: [Float], _ dimension: Int) -> [Float] {
        var values = values
        for row in 0..<(values.count / dimension) {
            var norm: Float = 0
            for k in 0..<dimension { norm += values[row * dimension + k] * values[row * dimension + k] }
            let scale = 1 / norm.squareRoot()
            for k in 0..<dimension { values[row * dimension + k] *= scale }
        }
        return values
    }
}

struct KernelWorkloadData {
    var workload: KernelWorkload
    /// `[queryCount × queryTokens, dimension]`.
    var queries: [Float]
    /// `[ΣLd, dimension]`.
    var documents: [Float]
    var offsets: [Int]

    var flopCount: Double {
        2 * Double(workload.queryCount * workload.queryTokens) * Double(offsets[offsets.count - 1])
            * Double(workload.dimension)
    }

    func time(kernel: MaxSimKernel, elementType: TokenElementType, repeats: Int) throws -> Timing {
        let dimension = workload.dimension
        let elements = TokenElements.converting(documents, dimension: dimension, to: elementType)
        let packed = try Multivectors(elements: elements, offsets: offsets, dimension: dimension)
        if workload.allPairs {
            let queryElements = TokenElements.float32(queries)
            let padded = try PaddedMultivectors(
                elements: queryElements,
                lengths: Array(repeating: workload.queryTokens, count: workload.queryCount),
                paddedLength: workload.queryTokens,
                dimension: dimension
            )
            let queryPacked = try Multivectors(
                elements: padded.elements,
                offsets: (0...workload.queryCount).map { $0 * workload.queryTokens },
                dimension: dimension
            )
            return try Timing.measure(flop: flopCount, repeats: repeats) {
                let result = try kernel.allPairs(queries: queryPacked, documents: packed)
                blackHole(result.scores)
            }
        }
        let query = try Multivector(Array(queries.prefix(workload.queryTokens * dimension)), dimension: dimension)
        return try Timing.measure(flop: flopCount, repeats: repeats) {
            let result = try kernel.scores(query: query, documents: packed)
            blackHole(result.scores)
        }
    }

    /// Writes `queries.f32`, `documents.f32`, `offsets.i64` and `shape.json` under `directory/name`.
    func export(to directory: String, name: String) throws {
        let folder = URL(fileURLWithPath: directory).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try queries.withUnsafeBytes { try Data($0).write(to: folder.appendingPathComponent("queries.f32")) }
        try documents.withUnsafeBytes { try Data($0).write(to: folder.appendingPathComponent("documents.f32")) }
        let offsets64 = offsets.map(Int64.init)
        try offsets64.withUnsafeBytes { try Data($0).write(to: folder.appendingPathComponent("offsets.i64")) }
        let shape: [String: Int] = [
            "query_count": workload.queryCount, "query_tokens": workload.queryTokens,
            "document_count": workload.documentCount, "dimension": workload.dimension,
            "all_pairs": workload.allPairs ? 1 : 0,
        ]
        try JSONSerialization.data(withJSONObject: shape, options: [.sortedKeys])
            .write(to: folder.appendingPathComponent("shape.json"))
    }
}

/// OpenBLAS `cblas_sgemm` on the product a kernel call is equivalent to.
enum SgemmYardstick {
    static func peak(size: Int, repeats: Int) -> Timing {
        var random = SplitMix64(seed: 1)
        let a = random.signedUnits(size * size)
        let b = random.signedUnits(size * size)
        var c = [Float](repeating: 0, count: size * size)
        let n = Int32(size)
        return Timing.measure(flop: 2 * pow(Double(size), 3), repeats: repeats) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, &c, n)
            blackHole(c)
        }
    }

    /// `[Lq_total, dimension] × [ΣLd, dimension]ᵀ`, the similarity matrix the fused kernel never writes.
    static func time(data: KernelWorkloadData, repeats: Int) -> Timing {
        let m = data.workload.queryCount * data.workload.queryTokens
        let n = data.offsets[data.offsets.count - 1]
        let k = data.workload.dimension
        var c = [Float](repeating: 0, count: m * n)
        return Timing.measure(flop: data.flopCount, repeats: repeats) {
            cblas_sgemm(
                CblasRowMajor,
                CblasNoTrans,
                CblasTrans,
                Int32(m),
                Int32(n),
                Int32(k),
                1,
                data.queries,
                Int32(k),
                data.documents,
                Int32(k),
                0,
                &c,
                Int32(n)
            )
            blackHole(c)
        }
    }
}

/// Keeps a result alive so the optimiser cannot drop the work that made it.
@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

enum MachineDescription {
    static var current: String {
        let cpuInfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuInfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
            ?? "unknown CPU"
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}
