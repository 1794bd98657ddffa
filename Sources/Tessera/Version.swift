/// Tessera's version, as `tessera --version` prints it.
public enum TesseraVersion {
    /// The release: major.minor.patch.
    public static let current = "0.6.0"
}
