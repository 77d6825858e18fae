package dev.fyp.flink.envelope;

/** Strict UTF-8 validation, as Python's {@code bytes.decode()}: no overlong forms, surrogates or code points above U+10FFFF. */
final class Utf8 {

    private Utf8() {}

    static boolean isValid(byte[] s) {
        int i = 0;
        final int n = s.length;
        while (i < n) {
            int b = s[i];
            if (b >= 0) { // ASCII
                i++;
                continue;
            }
            b &= 0xFF;
            if (b >= 0xC2 && b <= 0xDF) {
                if (i + 1 >= n || !cont(s[i + 1])) {
                    return false;
                }
                i += 2;
            } else if (b >= 0xE0 && b <= 0xEF) {
                if (i + 2 >= n) {
                    return false;
                }
                int b1 = s[i + 1] & 0xFF;
                if (!cont(s[i + 1]) || !cont(s[i + 2])) {
                    return false;
                }
                if (b == 0xE0 && b1 < 0xA0) {
                    return false; // overlong
                }
                if (b == 0xED && b1 > 0x9F) {
                    return false; // surrogate
                }
                i += 3;
            } else if (b >= 0xF0 && b <= 0xF4) {
                if (i + 3 >= n) {
                    return false;
                }
                int b1 = s[i + 1] & 0xFF;
                if (!cont(s[i + 1]) || !cont(s[i + 2]) || !cont(s[i + 3])) {
                    return false;
                }
                if (b == 0xF0 && b1 < 0x90) {
                    return false; // overlong
                }
                if (b == 0xF4 && b1 > 0x8F) {
                    return false; // above U+10FFFF
                }
                i += 4;
            } else {
                return false;
            }
        }
        return true;
    }

    private static boolean cont(byte b) {
        return (b & 0xC0) == 0x80;
    }
}
