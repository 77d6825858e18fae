package dev.fyp.flink.envelope;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.avro.Schema;

/**
 * Reads one Avro binary body against its writer schema, with the error rules of {@code schemas/decoder.py}
 * (the decoder the Python job uses), so that both decoders send the same payloads to the dead-letter topic
 * with the same reason.
 *
 * <p>Values: a record is an {@code Object[]} in field order; string, bytes and fixed are {@code byte[]}
 * (strings checked to be UTF-8); int {@link Integer}, long {@link Long}, float {@link Float}, double {@link
 * Double}, boolean {@link Boolean}, null {@code null}; an enum is its symbol ({@link String}); an array a
 * {@link List}; a map a {@link Map} with String keys.
 *
 * <p>Errors, as in Python: reading a byte past the end is {@link #TRUNCATED} (Python's IndexError); a negative
 * length, a bad union or enum index, an int outside 32 bits, a varint over 10 bytes, a boolean byte above 1,
 * a block count larger than the payload, a string that is not UTF-8, a float or double cut short (Python's
 * struct.error) and bytes left over after the record are {@link #CORRUPT}. Like Python's slicing, a string
 * or bytes value longer than what is left takes what is left and moves the position past the end, so the
 * next read (or the end check) reports the truncation. One deliberate difference: a 10-byte varint whose
 * value needs more than 64 bits is {@link #CORRUPT} here (Python would produce an int that no BIGINT holds).
 */
final class AvroBody {

    /** Why a body could not be read: {@code reason} is {@code truncated_body} or {@code corrupt_body}. */
    static final class Undecodable extends Exception {
        private static final long serialVersionUID = 1L;
        final String reason;

        Undecodable(String reason) {
            super(reason, null, false, false); // no stack trace: these are data, not bugs
            this.reason = reason;
        }
    }

    static final Undecodable TRUNCATED = new Undecodable("truncated_body");
    static final Undecodable CORRUPT = new Undecodable("corrupt_body");

    private final byte[] buf;
    private final int len;
    /** May run past {@code len} (a long string cut short), as Python's position does. */
    private long pos;

    private AvroBody(byte[] buf, int pos) {
        this.buf = buf;
        this.len = buf.length;
        this.pos = pos;
    }

    /** Decodes the record that must fill {@code buf} from {@code start} to its end. */
    static Object[] readRecord(Schema schema, byte[] buf, int start) throws Undecodable {
        AvroBody body = new AvroBody(buf, start);
        Object[] record = body.record(schema);
        if (body.pos != body.len) {
            throw body.pos > body.len ? TRUNCATED : CORRUPT;
        }
        return record;
    }

    private int next() throws Undecodable {
        if (pos >= len) {
            throw TRUNCATED;
        }
        return buf[(int) pos++] & 0xFF;
    }

    /** Zig-zag varint. */
    private long varint() throws Undecodable {
        int b = next();
        if (b < 0x80) {
            return (b >>> 1) ^ -(b & 1);
        }
        long n = b & 0x7F;
        int shift = 7;
        while (true) {
            b = next();
            if (shift == 63 && (b & 0x7E) != 0) {
                throw CORRUPT; // more than 64 bits
            }
            n |= (long) (b & 0x7F) << shift;
            if (b < 0x80) {
                return (n >>> 1) ^ -(n & 1);
            }
            shift += 7;
            if (shift > 63) {
                throw CORRUPT; // varint longer than 10 bytes
            }
        }
    }

    private long length() throws Undecodable {
        long n = varint();
        if (n < 0) {
            throw CORRUPT;
        }
        return n;
    }

    /** The next {@code n} bytes, or what is left of them; moves past all {@code n}. */
    private byte[] raw() throws Undecodable {
        long n = length();
        long from = Math.min(pos, len);
        long to = Math.min(pos + n, len);
        if (pos + n < 0) { // overflow: Python's position would be beyond any payload
            to = len;
        }
        byte[] out = new byte[(int) Math.max(0, to - from)];
        System.arraycopy(buf, (int) from, out, 0, out.length);
        pos = pos + n < 0 ? Long.MAX_VALUE : pos + n;
        return out;
    }

    private byte[] string() throws Undecodable {
        byte[] s = raw();
        if (!Utf8.isValid(s)) {
            throw CORRUPT;
        }
        return s;
    }

    private Object[] record(Schema schema) throws Undecodable {
        List<Schema.Field> fields = schema.getFields();
        Object[] out = new Object[fields.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = read(fields.get(i).schema());
        }
        return out;
    }

    private Object read(Schema schema) throws Undecodable {
        switch (schema.getType()) {
            case NULL:
                return null;
            case BOOLEAN: {
                int b = next();
                if (b > 1) {
                    throw CORRUPT;
                }
                return b == 1;
            }
            case INT: {
                long n = varint();
                if (n < Integer.MIN_VALUE || n > Integer.MAX_VALUE) {
                    throw CORRUPT;
                }
                return (int) n;
            }
            case LONG:
                return varint();
            case FLOAT: {
                if (pos + 4 > len) {
                    throw CORRUPT; // struct.error in Python
                }
                float f = Float.intBitsToFloat(littleEndian(4));
                return f;
            }
            case DOUBLE: {
                if (pos + 8 > len) {
                    throw CORRUPT;
                }
                long bits = (littleEndian(4) & 0xFFFFFFFFL) | ((long) littleEndian(4) << 32);
                return Double.longBitsToDouble(bits);
            }
            case BYTES:
                return raw();
            case STRING:
                return string();
            case RECORD:
                return record(schema);
            case ENUM: {
                long i = varint();
                List<String> symbols = schema.getEnumSymbols();
                if (i < 0 || i >= symbols.size()) {
                    throw CORRUPT;
                }
                return symbols.get((int) i);
            }
            case FIXED: {
                int size = schema.getFixedSize();
                long from = Math.min(pos, len);
                long to = Math.min(pos + size, len);
                byte[] out = new byte[(int) Math.max(0, to - from)];
                System.arraycopy(buf, (int) from, out, 0, out.length);
                pos += size;
                return out;
            }
            case UNION: {
                long i = varint();
                List<Schema> branches = schema.getTypes();
                if (i < 0 || i >= branches.size()) {
                    throw CORRUPT;
                }
                return read(branches.get((int) i));
            }
            case ARRAY: {
                List<Object> out = new ArrayList<>();
                long count = varint();
                while (count != 0) {
                    count = blockCount(count);
                    for (long k = 0; k < count; k++) {
                        out.add(read(schema.getElementType()));
                    }
                    count = varint();
                }
                return out;
            }
            case MAP: {
                Map<String, Object> out = new LinkedHashMap<>();
                long count = varint();
                while (count != 0) {
                    count = blockCount(count);
                    for (long k = 0; k < count; k++) {
                        byte[] key = raw();
                        Object value = read(schema.getValueType());
                        if (!Utf8.isValid(key)) { // Python decodes the key after reading the value
                            throw CORRUPT;
                        }
                        out.put(new String(key, java.nio.charset.StandardCharsets.UTF_8), value);
                    }
                    count = varint();
                }
                return out;
            }
            default:
                throw new IllegalArgumentException("unsupported Avro type " + schema.getType());
        }
    }

    /** A block's item count; a negative count is followed by the block's size in bytes, skipped. */
    private long blockCount(long count) throws Undecodable {
        boolean huge = count == Long.MIN_VALUE;
        if (count < 0) {
            count = -count;
            varint();
        }
        if (huge || count > len) {
            throw CORRUPT; // block count larger than the payload
        }
        return count;
    }

    private int littleEndian(int bytes) {
        int p = (int) pos;
        int v = 0;
        for (int k = 0; k < bytes; k++) {
            v |= (buf[p + k] & 0xFF) << (8 * k);
        }
        pos += bytes;
        return v;
    }
}
