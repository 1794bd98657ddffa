import TesseraPlatform

extension EncoderError {
    /// Wraps a failed system call on `path`: `.missingFile` when the file is absent, `.malformedFile` otherwise.
    init(systemCallError error: SystemCallError, path: String) {
        if error.isMissingFile {
            self.init(.missingFile, "no such file", location: Location(path: path))
        } else {
            self.init(.malformedFile, "\(error.call) failed: \(error.reason)", location: Location(path: path))
        }
    }

    /// Reads a small file whole, turning a failure into an ``EncoderError`` that names the file.
    static func readFile(_ path: String) throws(EncoderError) -> [UInt8] {
        do {
            return try Syscalls.readWholeFile(path)
        } catch {
            throw EncoderError(systemCallError: error, path: path)
        }
    }
}

extension MappedFile {
    /// Maps a model file.
    /// - Throws: ``EncoderError`` `.missingFile` when the file is absent, `.malformedFile` for other failures.
    static func model(at path: String) throws(EncoderError) -> MappedFile {
        do {
            return try MappedFile(path: path)
        } catch {
            throw EncoderError(systemCallError: error, path: path)
        }
    }
}
