// `run`'s options for an image, apart from src/cli/image-run.ts: parsing them loads none of the image code.
export const IMAGE_RUN_OPTIONS = [
  { long: 'pull', value: 'single' as const },
  { long: 'entrypoint', value: 'single' as const },
  { long: 'platform', value: 'single' as const },
  { long: 'tls-verify', value: 'optional' as const },
];

export const IMAGE_RUN_HELP = `      --pull POLICY      for an image: missing (default), always or never
      --entrypoint CMD   replace the image's entrypoint (and its Cmd)
      --platform OS/ARCH the platform to pull (default: this machine's)`;
