package dev.fyp.flink.families;

import java.io.IOException;

import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.core.memory.MemorySegmentFactory;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.binary.BinaryArrayData;
import org.apache.flink.table.data.binary.BinarySegmentUtils;

import dev.fyp.flink.aggregates.FeatureVectorCore.Acc;

/**
 * A FEATURE_VECTOR accumulator as bytes, for keyed state: the reference time, the number of aggregations and
 * the raw bytes of each binary array, so that reading it back points arrays at the bytes with no parsing.
 * The spec is not stored: the operator knows each set's spec.
 */
final class AccCodec {

    private AccCodec() {}

    static byte[] encode(Acc acc, DataOutputSerializer out) throws IOException {
        out.clear();
        out.writeLong(acc.refMs);
        out.writeInt(acc.aggs);
        writeArray(out, acc.entryTimes);
        writeArray(out, acc.entryVals);
        writeArray(out, acc.tileIndex);
        writeArray(out, acc.sums);
        writeArray(out, acc.decayed);
        return out.getCopyOfBuffer();
    }

    static Acc decode(byte[] bytes, String spec) throws IOException {
        DataInputDeserializer in = new DataInputDeserializer(bytes);
        Acc acc = new Acc();
        acc.spec = spec;
        acc.refMs = in.readLong();
        acc.aggs = in.readInt();
        acc.entryTimes = readArray(in, bytes);
        acc.entryVals = readArray(in, bytes);
        acc.tileIndex = readArray(in, bytes);
        acc.sums = readArray(in, bytes);
        acc.decayed = readArray(in, bytes);
        return acc;
    }

    private static void writeArray(DataOutputSerializer out, ArrayData array) throws IOException {
        if (array == null) {
            out.writeInt(-1);
            return;
        }
        BinaryArrayData binary = (BinaryArrayData) array;
        out.writeInt(binary.getSizeInBytes());
        if (binary.getSegments().length == 1) {
            out.write(binary.getSegments()[0], binary.getOffset(), binary.getSizeInBytes());
        } else {
            out.write(BinarySegmentUtils.copyToBytes(binary.getSegments(), binary.getOffset(),
                    binary.getSizeInBytes()));
        }
    }

    private static ArrayData readArray(DataInputDeserializer in, byte[] bytes) throws IOException {
        int size = in.readInt();
        if (size < 0) {
            return null;
        }
        int offset = in.getPosition();
        in.skipBytesToRead(size);
        BinaryArrayData array = new BinaryArrayData();
        array.pointTo(MemorySegmentFactory.wrap(bytes), offset, size);
        return array;
    }
}
