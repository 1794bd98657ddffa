import TesseraPlatform

extension IndexError {
    /// An ``Code/io`` error for a failed system call, naming its file.
    init(_ error: SystemCallError) {
        self.init(.io, "\(error.call) failed: \(error.reason)", path: error.path)
    }
}

extension MappedFile {
    /// Maps an index file, which is never empty.
    /// - Throws: ``IndexError/Code/io`` when the file cannot be opened, sized or mapped;
    ///   ``IndexError/Code/corrupted`` for an empty file.
    static func index(at path: String) throws(IndexError) -> MappedFile {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch {
            throw IndexError(error)
        }
        guard file.byteCount > 0 else { throw IndexError(.corrupted, "the file is empty", path: path, offset: 0) }
        return file
    }
}

/// Replaces `path` with the concatenated `chunks` (temporary file, fsync, rename, directory fsync).
/// - Throws: ``IndexError/Code/io``.
func writeFileAtomically(path: String, chunks: [UnsafeRawBufferPointer]) throws(IndexError) {
    do {
        try AtomicFile.write(chunks: chunks, to: path)
    } catch {
        throw IndexError(error)
    }
}
