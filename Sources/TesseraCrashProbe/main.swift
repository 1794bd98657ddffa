// Ingests into a collection until it is killed; used only by TesseraTests' crash test.
//
// Usage: tessera-crash-probe <collection-dir> <first-id> <seed> [seal|merge|index]
//
// Upserts batches of points with ids first-id, first-id + 1, … (and now and then re-upserts an earlier id with
// the same content), and after each upsert returns writes "ack <id>" for every id of the batch to standard
// output with one write(2) call, so that every printed id is one the store has acknowledged. The content of a
// point is a function of its id (`ProbePoints.point(id:)`), which the test recomputes to check what survived.
//
// With an operation, each batch is followed by that operation of the optimiser, announced on its own line
// before it starts, so that the test knows what a kill interrupted: "seal" (the tail into a new segment),
// "merge" (after a seal, segments merged down to three, or one rewritten without its deleted slots), or "index"
// (the compressed index and the HNSW graph rebuilt); "idle" follows when it is done.

import Foundation
import Tessera
import TesseraPlatform

let arguments = CommandLine.arguments
guard arguments.count == 4 || (arguments.count == 5 && ["seal", "merge", "index"].contains(arguments[4])),
    let firstID = UInt64(arguments[2]), let seed = UInt64(arguments[3])
else {
    FileHandle.standardError.write(
        Data("usage: tessera-crash-probe <collection-dir> <first-id> <seed> [seal|merge|index]\n".utf8)
    )
    exit(2)
}
let operation = arguments.count == 5 ? arguments[4] : nil

/// The optimiser's settings for one operation: sealing only, or merging only.
func settings(seal: Bool) -> OptimizerSettings {
    var settings = OptimizerSettings()
    settings.indexingThreshold = 0
    settings.defaultSegmentNumber = seal ? 1_000_000 : 3
    settings.vacuumMinVectorNumber = 2
    return settings
}

func announce(_ operation: String) { FileHandle.standardOutput.write(Data("\(operation)\n".utf8)) }

do {
    let store = try CollectionStore.openOrCreate(at: arguments[1], configuration: ProbePoints.configuration)
    var random = SplitMix64(seed: seed)
    var nextID = firstID
    while true {
        let batchSize = Int.random(in: 1...16, using: &random)
        var ids = (0..<UInt64(batchSize)).map { nextID + $0 }
        nextID += UInt64(batchSize)
        if nextID - firstID > 32, Bool.random(using: &random) {
            ids.append(UInt64.random(in: firstID..<nextID - UInt64(batchSize), using: &random))
        }
        try store.upsert(ids.map(ProbePoints.point(id:)))
        FileHandle.standardOutput.write(Data(ids.map { "ack \($0)\n" }.joined().utf8))
        switch operation {
        case "seal"?, "merge"?:
            announce("seal")
            try store.optimize(settings: settings(seal: true), force: true, buildIndexes: false)
            if operation == "merge" {
                announce("merge")
                try store.optimize(settings: settings(seal: false), buildIndexes: false)
            }
        case "index"?:
            announce("index")
            _ = try store.buildCompressedIndex(field: "tokens")
            _ = try store.buildDenseIndex(field: "summary")
        default:
            continue
        }
        announce("idle")
    }
} catch {
    FileHandle.standardError.write(Data("tessera-crash-probe: \(error)\n".utf8))
    exit(1)
}
