// Reads a Solana keypair from the text of an environment variable, in any of the forms wallets and
// the Solana CLI use: base58 of the 64-byte keypair (32-byte seed then public key), base58 of the
// 32-byte seed alone, or a JSON array of the 64 bytes (a CLI keypair file's content). A 64-byte
// keypair whose public half does not belong to its seed is refused. The key is never printed.
import { createKeyPairSignerFromBytes, createKeyPairSignerFromPrivateKeyBytes, getBase58Encoder } from "@solana/kit";

/** A kit `KeyPairSigner` for `text`; throws a message that names `name` (never the key). */
export async function signerFromKey(text, name) {
  if (!text) throw new Error(`${name} is not set`);
  let bytes;
  try {
    const trimmed = text.trim();
    bytes = trimmed.startsWith("[")
      ? Uint8Array.from(JSON.parse(trimmed))
      : Uint8Array.from(getBase58Encoder().encode(trimmed));
  } catch {
    throw new Error(`${name} is neither base58 nor a JSON array of bytes`);
  }
  if (bytes.length === 64) {
    try {
      return await createKeyPairSignerFromBytes(bytes);
    } catch {
      throw new Error(`${name}: the public half of the 64-byte keypair does not match its seed`);
    }
  }
  if (bytes.length === 32) return createKeyPairSignerFromPrivateKeyBytes(bytes);
  throw new Error(`${name} holds ${bytes.length} bytes: expected a 64-byte keypair or a 32-byte seed`);
}
