/// An error from building, loading or searching a compressed index.
///
/// Every error says what kind of failure it is (``code``), explains it in words (``message``) and, where it
/// applies, where the problem is: the index file, the argument or section, a byte offset.
public struct IndexError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Equatable {
        /// An argument is out of range or inconsistent with another (a dimension, a bit count, a count).
        case invalidArgument
        /// An index file cannot be read back: truncated, a bad magic number or checksum, inconsistent sections.
        case corrupted
        /// The operating system failed to read or write.
        case io
    }

    /// What kind of failure this is.
    public var code: Code
    /// The failure in words, with the values involved.
    public var message: String
    /// The index file, when the error concerns one.
    public var path: String?
    /// The argument or file section concerned.
    public var field: String?
    /// A byte offset into the file, or an index into the input.
    public var offset: Int?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: The failure in words.
    ///   - path: The index file concerned.
    ///   - field: The argument or section concerned.
    ///   - offset: A byte offset or input index.
    public init(_ code: Code, _ message: String, path: String? = nil, field: String? = nil, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.field = field
        self.offset = offset
    }

    public var description: String {
        var parts = ["\(code.rawValue): \(message)"]
        if let path { parts.append("file \(path)") }
        if let field { parts.append("field '\(field)'") }
        if let offset { parts.append("offset \(offset)") }
        return parts.joined(separator: ", ")
    }
}
