"""APDU, status word, BER-TLV and DOL codecs (ISO/IEC 7816-4, EMV Book 3): no state, no IO."""
