export const NAME = "mailgate";
export const VERSION = "0.1.0";
