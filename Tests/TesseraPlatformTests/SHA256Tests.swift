import Foundation
import TesseraPlatform
import Testing

@Suite("SHA256")
struct SHA256Tests {
    @Test(
        "FIPS 180-4 example digests",
        arguments: [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            ),
        ]
    )
    func examples(message: String, digest: String) {
        #expect(SHA256.hexDigest(of: Array(message.utf8)) == digest)
    }

    @Test("a million 'a's, and the same digest however the bytes are split", arguments: [1, 7, 63, 64, 65, 1000])
    func pieces(pieceByteCount: Int) {
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        var hash = SHA256()
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + pieceByteCount)
            hash.update(Array(bytes[start..<end]))
            start = end
        }
        #expect(hash.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Digests from Python's `hashlib.sha256` of bytes `(i * 31) & 0xff`.
    @Test(
        "lengths around the padding boundary match a reference, split or whole",
        arguments: [
            (55, "27d3069ecafb8507f92fa750312a99afe0908525e67b2abe8942b51659945b1b"),
            (56, "3428ab653c0a1ac104ee80fd3bed55135da5556ca4c26da9c781ae56364a6969"),
            (57, "28c22b1d4fc34c26ca51d137ec64373fc16b38e32cef9c6759f910fc628efee1"),
            (63, "b5ec25bd1c4b7c94c9ea9d235272e43f644f561d7c8c7e58ec5fa9aefe95ef07"),
            (64, "a08f82c23e6c13629d8e33d0d2a13005fb104363eb793b5e8842044951d27764"),
            (119, "b4639d08cdba917a7875088b4e05633a7812e14282482de937915c9799b17250"),
            (120, "e4fce14f6aa99657bdffe9f1da59ce85f0398479e9af7e9de6ccf53e174447ab"),
        ]
    )
    func paddingBoundaries(byteCount: Int, digest: String) {
        let bytes = (0..<byteCount).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(SHA256.hexDigest(of: bytes) == digest)
        var split = SHA256()
        split.update(Array(bytes.prefix(byteCount / 2)))
        split.update(Array(bytes.dropFirst(byteCount / 2)))
        #expect(split.finalizeHex() == digest)
    }
}
