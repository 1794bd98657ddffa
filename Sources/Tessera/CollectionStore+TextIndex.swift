import Foundation
import Synchronization
import TesseraPlatform

/// What a collection's BM25 index of one choice of fields and analyzer holds, and how it stands against its
/// persisted file.
public struct TextIndexStatus: Sendable {
    /// The payload fields.
    public var fields: [String]
    /// The analyzer.
    public var analyzer: TextAnalyzer
    /// The persisted index file; `nil` when none is recorded.
    public var file: String?
    /// The file's size (0 without a file).
    public var fileByteCount: Int
    /// Live documents in the in-memory index.
    public var documentCount: Int
    /// Terms in the live documents (0 when no payload holds text at the fields).
    public var termCount: Int = 0
    /// Documents taken from the file when it was loaded (the others were analysed from their payloads).
    public var loadedDocumentCount: Int
    /// Documents added, replaced, edited or removed since the file was loaded or written (an upper bound):
    /// what a new process would analyse again, or drop, after loading the file. When it grows large against
    /// ``documentCount``, ``CollectionStore/buildTextIndex(fields:analyzer:)`` is worth calling.
    public var pendingDocumentCount: Int
    /// Why the recorded file could not be used, when it could not (the index was then built from the payloads).
    public var error: TesseraError?
}

extension CollectionStore {
    /// The metadata prefix under which the collection's database records each persisted BM25 index.
    static let textIndexKind = "text_index"

    /// Writes the BM25 index of `fields` and `analyzer` to a file, so that a new process loads it at its first
    /// text query instead of analysing every payload.
    ///
    /// The in-memory index is caught up with the points stored now (loading the current file, or analysing the
    /// payloads, when this process has not used the index yet) and written as a new derived-index generation:
    /// a ``BM25File`` through ``TesseraPlatform/AtomicFile`` (temporary name, fsync, rename), then one transaction
    /// records it as current; the previous generation's file is deleted afterwards, and so is any file of this
    /// index that a build killed before its commit left behind. A crash at any point leaves the previous file
    /// current, whole. Points written during the write are caught up at load like any later write.
    ///
    /// When it is written: `tessera index` calls this at the end of indexing, and a background optimiser can
    /// call it when ``textIndexStatus(fields:analyzer:)`` reports many pending documents. ``close()`` does not:
    /// closing stays quick and cannot fail on a derived index, and a file that is behind is still exact (its
    /// stale documents are found by fingerprint and analysed again at load), only slower to load. The call
    /// writes nothing when the recorded file already matches the index.
    /// - Parameters:
    ///   - fields: The payload fields (default `title` and `text`, as in ``TextSearchRequest``).
    ///   - analyzer: The analyzer (default ``TextAnalyzer/init(foldsDiacritics:removesStopWords:stems:)``).
    /// - Returns: The index's status after the write.
    /// - Throws: ``TesseraError/Code/invalidArgument`` without fields, ``TesseraError/Code/io`` when the file
    ///   or the commit fails (the previous file then stays current), ``TesseraError/Code/locked`` for a read-only
    ///   store, ``TesseraError/Code/notFound`` once closed.
    /// - Complexity: O(postings + text of the live points) beyond catching up; SciFact's 5,183 documents give a
    ///   file of about 5 MB.
    @discardableResult
    public func buildTextIndex(
        fields: [String] = QueryParameters.defaultTextFields,
        analyzer: TextAnalyzer = TextAnalyzer()
    ) throws(TesseraError) -> TextIndexStatus {
        try writeTextIndex(fields: fields, analyzer: analyzer, beforeCommit: nil)
    }

    /// ``buildTextIndex(fields:analyzer:)``, with a hook that runs after the file is written and before it is
    /// committed (tests throw from it to stand for a crash there).
    func writeTextIndex(
        fields: [String],
        analyzer: TextAnalyzer,
        beforeCommit: ((String) throws(TesseraError) -> Void)?
    ) throws(TesseraError) -> TextIndexStatus {
        guard !fields.isEmpty else {
            throw TesseraError(
                .invalidArgument,
                "a text index needs at least one payload field",
                location: .init(field: "fields")
            )
        }
        // Checked before the file is written, so that a reader never leaves a file in the owner's directory.
        guard access == .readWrite else {
            throw TesseraError(
                .locked,
                "the collection was opened read-only; the text index is written by the process that owns it",
                location: .init(path: directory)
            )
        }
        let key = TextIndexState.key(fields: fields, analyzer: analyzer)
        return try textIndexes.writing.withLock { _ throws(TesseraError) -> TextIndexStatus in
            // The view is read while holding the index, so that the index is never ahead of it.
            let (state, view) = textIndexes.states.withLock { states in
                var state = states[key] ?? loadedTextIndexState(fields: fields, analyzer: analyzer)
                let view = scoringView()
                state.catchUp(with: view)
                states[key] = state
                return (state, view)
            }
            if state.filePath != nil, state.loadError == nil, state.changeCount == state.changeCountAtFile {
                return textIndexStatus(of: state)
            }
            let file = Self.persistedTextIndex(of: state, view: view, key: key)
            let generation = try indexGeneration() + 1
            let prefix = Self.textIndexFilePrefix(key: key)
            let fileName = "\(prefix)\(generation).tbm25"
            let path = (directory as NSString).appendingPathComponent(fileName)
            do {
                try AtomicFile.write(file.encoded(), to: path)
            } catch {
                throw TesseraError(.io, "writing the BM25 index failed", location: .init(path: path), cause: "\(error)")
            }
            try beforeCommit?(path)
            try commitGeneration(
                generation,
                of: Self.textIndexKind,
                field: key,
                fileName: fileName,
                files: { [$0] }
            )
            // Files of this index that a build killed before its commit left behind.
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for name in entries where name.hasPrefix(prefix) && name.hasSuffix(".tbm25") && name != fileName {
                try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
            }
            return textIndexes.states.withLock { states in
                var current = states[key] ?? state
                current.filePath = path
                current.loadError = nil
                // Writes taken in since the snapshot are not in the file.
                current.changeCountAtFile = state.changeCount
                states[key] = current
                return textIndexStatus(of: current)
            }
        }
    }

    /// The status of the BM25 index of `fields` and `analyzer`, caught up with the points stored now (loading
    /// it, or building it from the payloads, when this process has not used it yet).
    /// - Parameters:
    ///   - fields: The payload fields.
    ///   - analyzer: The analyzer.
    /// - Returns: The status.
    /// - Complexity: O(changes since the last catch-up); the first call loads the index.
    public func textIndexStatus(
        fields: [String] = QueryParameters.defaultTextFields,
        analyzer: TextAnalyzer = TextAnalyzer()
    ) -> TextIndexStatus {
        let key = TextIndexState.key(fields: fields, analyzer: analyzer)
        let state = textIndexes.states.withLock { states in
            var state = states[key] ?? loadedTextIndexState(fields: fields, analyzer: analyzer)
            let view = scoringView()
            if !state.cursor.isAhead(of: view) { state.catchUp(with: view) }
            states[key] = state
            return state
        }
        return textIndexStatus(of: state)
    }

    private func textIndexStatus(of state: TextIndexState) -> TextIndexStatus {
        let byteCount = state.filePath.flatMap {
            (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? NSNumber)?.intValue
        }
        return TextIndexStatus(
            fields: state.fields,
            analyzer: state.analyzer,
            file: state.filePath,
            fileByteCount: byteCount ?? 0,
            documentCount: state.index.documentCount,
            termCount: state.index.totalLength,
            loadedDocumentCount: state.loadedDocumentCount,
            pendingDocumentCount: state.changeCount - state.changeCountAtFile,
            error: state.loadError
        )
    }

    /// A new state for `fields` and `analyzer`, holding the recorded persisted index when there is one and it
    /// reads back whole (its load error otherwise); the first catch-up takes the file in.
    func loadedTextIndexState(fields: [String], analyzer: TextAnalyzer) -> TextIndexState {
        var state = TextIndexState(fields: fields, analyzer: analyzer)
        let key = TextIndexState.key(fields: fields, analyzer: analyzer)
        // A closed store cannot read its database; its in-memory view is then indexed from the payloads.
        guard let name = try? recordedFileName(of: Self.textIndexKind, field: key) else { return state }
        let path = (directory as NSString).appendingPathComponent(name)
        do {
            state.file = try BM25File(path: path, key: key)
            state.filePath = path
        } catch {
            state.loadError = error
        }
        return state
    }

    /// The start of the file names of one index's generations: `bm25-` and 16 hex digits of the key's hash.
    static func textIndexFilePrefix(key: String) -> String {
        var key = key
        let hash = key.withUTF8 { BM25File.checksum(UnsafeRawBufferPointer($0)) }
        let hex = String(hash, radix: 16)
        return "bm25-" + String(repeating: "0", count: 16 - hex.count) + hex + "-"
    }

    /// The persisted form of a caught-up state: one document per live slot of `view`, in slot order.
    static func persistedTextIndex(of state: TextIndexState, view: ScoringView, key: String) -> BM25File {
        let slots = view.liveSlots.slots
        var documentNumbers = [Int](repeating: -1, count: view.slotCount)
        for (document, slot) in slots.enumerated() { documentNumbers[slot] = document }
        var file = BM25File(
            key: key,
            documentIDs: slots.map { view.pointIDs[$0] },
            documentLengths: slots.map { UInt32(state.index.length(of: $0)) },
            documentFingerprints: slots.map {
                TextFingerprint(of: TextIndexState.text(ofSlot: $0, in: view, fields: state.fields))
            },
            terms: [],
            postingStarts: [0],
            postingDocuments: [],
            postingFrequencies: []
        )
        for (term, postings) in state.index.currentPostings() {
            file.terms.append(term)
            for posting in postings {
                // Slot order is document order, so each list stays in document order.
                file.postingDocuments.append(UInt32(documentNumbers[posting.document]))
                file.postingFrequencies.append(UInt32(posting.frequency))
            }
            file.postingStarts.append(file.postingDocuments.count)
        }
        return file
    }
}
